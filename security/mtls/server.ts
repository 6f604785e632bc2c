/**
 * The server side of component mTLS on a master.
 *
 * {@link MtlsServerContext} holds what every mTLS listener of the master
 * presents and checks: its own certificate (renewed), the cluster root as the
 * only trust anchor, and the CRLs of the root (for the intermediate) and the
 * intermediate (for leaves), reloaded every `crlRefreshSeconds` and at once
 * after a revocation on this master. Listeners re-read it on every change
 * (`setSecureContext`), so rotation and revocation need no restart.
 *
 * {@link attachMtls} makes an HTTP server speak both plain HTTP and mTLS on
 * its one port: the first byte of a connection decides (0x16 is a TLS
 * handshake record). TLS connections must present a client certificate that
 * OpenSSL verifies against the cluster root and the CRLs, for the
 * `ssl_client` purpose (clientAuth EKU; key usage checked up the chain),
 * TLS 1.2 at least, naming one SPIFFE id of the trust domain; any other is
 * closed before HTTP and counted by reason; open connections whose
 * certificate is revoked later are ended when the CRL reloads. Plain connections are served as
 * before; whether a route accepts them is the route guard's decision
 * (`guard.ts`).
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { toPem } from '../ca/x509.ts';
import type { ComponentCertificate } from './certificate.ts';
import { handshakeFailure, peerIdentity, type PeerIdentity } from './identity.ts';
import type { MtlsMetrics } from './metrics.ts';

/** What the cluster CA offers a verifier (`ClusterCa` satisfies it). */
export interface TrustSource {
  readonly rootPem: string;
  readonly intermediatePem: string;
  /** The root's CRL (for the intermediate), PEM. */
  readonly rootCrlPem: string;
  /** The intermediate's CRL of revoked leaves (DER), at most `maxAgeSeconds` old. */
  crl(maxAgeSeconds?: number): Promise<Buffer>;
  /** Serials (lower-case hex) of revoked, unexpired certificates. */
  revokedSerials(): Promise<Set<string>>;
  onRevoked(listener: () => void): () => void;
}

export interface MtlsLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const MIN_TLS_VERSION = 'TLSv1.2';
/** A connection that sends nothing for this long is closed before it is given to HTTP or TLS. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;

export class MtlsServerContext {
  readonly trustDomain: string;
  readonly certificate: ComponentCertificate;
  /** The intermediate's subject as `X509Certificate` prints it. */
  readonly intermediateSubject: string;
  readonly #trust: TrustSource;
  readonly #listeners = new Set<() => void>();
  readonly #logger: MtlsLogger | undefined;
  #crlPem: string;
  #crlLoadedAtMs: number;
  #revoked: ReadonlySet<string> = new Set();
  #timer: NodeJS.Timeout | undefined;
  readonly #unsubscribe: (() => void)[] = [];

  private constructor(options: { certificate: ComponentCertificate; trust: TrustSource; trustDomain: string; logger?: MtlsLogger }, crlPem: string) {
    this.certificate = options.certificate;
    this.#trust = options.trust;
    this.trustDomain = options.trustDomain;
    this.intermediateSubject = new X509Certificate(options.trust.intermediatePem).subject;
    this.#logger = options.logger;
    this.#crlPem = crlPem;
    this.#crlLoadedAtMs = Date.now();
  }

  static async start(options: { certificate: ComponentCertificate; trust: TrustSource; trustDomain: string; crlRefreshSeconds: number; logger?: MtlsLogger }): Promise<MtlsServerContext> {
    const context = new MtlsServerContext(options, toPem(await options.trust.crl(0), 'X509 CRL'));
    context.#revoked = await options.trust.revokedSerials();
    context.#unsubscribe.push(options.certificate.onChange(() => context.#changed()));
    context.#unsubscribe.push(options.trust.onRevoked(() => void context.refreshCrl()));
    context.#timer = setInterval(() => void context.refreshCrl(), options.crlRefreshSeconds * 1000);
    context.#timer.unref();
    return context;
  }

  /** Key, chain, trust anchor and CRLs for `tls.createSecureContext`. */
  secureContextOptions(): SecureContextOptions {
    const held = this.certificate.current;
    return { key: held.keyPem, cert: held.certificateChain, ca: this.#trust.rootPem, crl: [this.#trust.rootCrlPem, this.#crlPem] };
  }

  /** When the CRL in use was loaded (ms since epoch). */
  get crlLoadedAtMs(): number {
    return this.#crlLoadedAtMs;
  }

  /** Is this certificate serial (hex, any case) revoked, as of the CRL in use? */
  isRevoked(serialHex: string): boolean {
    return this.#revoked.has(serialHex.toLowerCase());
  }

  /** Reload the CRL; listeners are told when it changed. Errors keep the previous CRL (logged). */
  async refreshCrl(): Promise<void> {
    try {
      const [der, revoked] = await Promise.all([this.#trust.crl(0), this.#trust.revokedSerials()]);
      const pem = toPem(der, 'X509 CRL');
      this.#crlLoadedAtMs = Date.now();
      if (pem === this.#crlPem) return;
      this.#crlPem = pem;
      this.#revoked = revoked;
      this.#changed();
    } catch (err) {
      this.#logger?.warn({ err }, 'mTLS: reloading the CRL failed; the previous one stays in use');
    }
  }

  /** Called whenever the certificate or CRL changes; returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The identity a verified client certificate names, or why it names none. */
  identityOf(subjectaltname: string | undefined): PeerIdentity | { readonly problem: string } {
    return peerIdentity(subjectaltname, this.trustDomain);
  }

  close(): void {
    clearInterval(this.#timer);
    for (const u of this.#unsubscribe) u();
  }

  #changed(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.#logger?.warn({ err }, 'mTLS: a listener could not take the new certificate or CRL');
      }
    }
  }
}

/**
 * What a dual-protocol listener needs from its context: a master's
 * {@link MtlsServerContext}, or an agent's (`listener-context.ts`).
 */
export type MtlsListenerContext = Pick<MtlsServerContext, 'intermediateSubject' | 'secureContextOptions' | 'isRevoked' | 'onChange' | 'identityOf'>;

const peers = new WeakMap<Socket, PeerIdentity>();

/** The verified identity of the client on this socket (undefined: plain HTTP, or not verified). */
export function peerOf(socket: Socket): PeerIdentity | undefined {
  return peers.get(socket);
}

export interface AttachedMtls {
  readonly tlsServer: HttpsServer;
  close(): void;
}

/**
 * Serve mTLS next to plain HTTP on `server`'s port (see the file comment).
 * `listener` labels the metrics (`api` on masters, `agent` on agents).
 */
export function attachMtls(server: HttpServer, context: MtlsListenerContext, options: { listener: string; metrics?: MtlsMetrics; logger?: MtlsLogger }): AttachedMtls {
  const { metrics, listener } = options;
  const refuse = (socket: TLSSocket, reason: ReturnType<typeof handshakeFailure>, detail: string): void => {
    metrics?.handshakeFailures.inc({ listener, reason });
    options.logger?.debug({ reason, detail, remote: socket.remoteAddress }, 'mTLS connection refused');
    socket.destroy();
  };
  const tlsServer = createHttpsServer(
    { ...context.secureContextOptions(), requestCert: true, rejectUnauthorized: false, minVersion: MIN_TLS_VERSION },
    (req, res) => server.emit('request', req, res),
  );
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    const peer = socket.getPeerCertificate();
    const hasCertificate = peer !== null && typeof peer === 'object' && peer.raw !== undefined;
    if (!socket.authorized) {
      const code = typeof socket.authorizationError === 'string' ? socket.authorizationError : (socket.authorizationError as { code?: string } | null)?.code;
      const selfIssued = hasCertificate && peer.issuer !== undefined && JSON.stringify(peer.issuer) === JSON.stringify(peer.subject);
      // The leaf names an issuer that is neither itself nor the cluster intermediate, and OpenSSL found that
      // issuer in the presented chain (else it reports a missing issuer or CRL): a certificate that is no CA
      // signed it. OpenSSL's last error is then "unspecified", after "invalid CA certificate".
      const leafIssuer = socket.getPeerX509Certificate()?.issuer;
      const nonCaIssuer = code === 'UNSPECIFIED' && !selfIssued && leafIssuer !== undefined && leafIssuer !== context.intermediateSubject;
      return refuse(socket, handshakeFailure(code, hasCertificate, { selfIssued, nonCaIssuer }), String(code));
    }
    const identity = context.identityOf(peer.subjectaltname);
    if ('problem' in identity) return refuse(socket, 'identity', identity.problem);
    peers.set(socket, identity);
    live.set(socket, peer.serialNumber);
    socket.once('close', () => live.delete(socket));
    metrics?.handshakes.inc({ listener });
  });
  tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    metrics?.handshakeFailures.inc({ listener, reason: handshakeFailure(err.code) });
    options.logger?.debug({ err: err.message, remote: socket.remoteAddress }, 'TLS handshake failed');
  });
  // Open mTLS connections by their client certificate's serial: a revocation ends them (the CRL only guards new handshakes).
  const live = new Map<TLSSocket, string>();
  const unsubscribe = context.onChange(() => {
    tlsServer.setSecureContext(context.secureContextOptions());
    for (const [socket, serial] of live) {
      if (!context.isRevoked(serial)) continue;
      live.delete(socket);
      metrics?.handshakeFailures.inc({ listener, reason: 'revoked' });
      options.logger?.debug({ serial, remote: socket.remoteAddress }, 'mTLS connection ended: its client certificate was revoked');
      socket.destroy();
    }
  });

  const plain = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  // Sockets whose first byte has not come yet: neither HTTP nor TLS knows them, so this tracks and ends them.
  const waiting = new Set<Socket>();
  const handedToTls = new Set<Socket>();
  const route = (socket: Socket): void => {
    waiting.add(socket);
    const gone = (): void => {
      waiting.delete(socket);
      socket.off('data', first);
      socket.destroy();
    };
    const first = (chunk: Buffer): void => {
      waiting.delete(socket);
      socket.off('end', gone);
      socket.off('error', gone);
      socket.off('timeout', gone);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === 0x16) {
        // The TLS socket takes over this socket's handle; this one may never emit 'close', and the HTTP server counts it
        // until it does (server.close() would wait forever): end it with its TLS socket, or at close().
        handedToTls.add(socket);
        socket.once('close', () => handedToTls.delete(socket));
        tlsServer.emit('connection', socket);
      } else for (const l of plain) l.call(server, socket);
      process.nextTick(() => socket.resume());
    };
    socket.once('data', first);
    socket.once('end', gone); // closed before saying anything (the HTTP server would keep it half-open)
    socket.once('error', gone);
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, gone);
  };
  server.on('connection', route);
  return {
    tlsServer,
    close() {
      unsubscribe();
      server.off('connection', route);
      for (const socket of waiting) socket.destroy();
      waiting.clear();
      for (const l of plain) server.on('connection', l);
      tlsServer.closeAllConnections();
      tlsServer.close();
      for (const socket of handedToTls) socket.destroy();
      handedToTls.clear();
    },
  };
}
