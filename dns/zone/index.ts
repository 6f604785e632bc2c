/**
 * The zones' public surface: the `Authority` contract, the options, the
 * pure builder, the authority over a feed (and over the store), the feed
 * port with its fake, and the Mesos-DNS HTTP API.
 */
export type { Authority, Question, Rcode, RecordType, ResourceRecord, ZoneAnswer } from './types.ts';
export { DEFAULT_ZONE_OPTIONS, IP_SOURCES, THIS_DCOS_APEX, resolveZoneOptions, type IpSource, type SoaOptions, type ThisDcosOptions, type ZoneOptions, type ZoneOptionsInput } from './options.ts';
export { buildZone, clusterRecords, discoveryPorts, enumerableTask, isTaskPublished, soaRecord, taskRecords, type BuiltZone, type EnumerableRecord, type EnumerableTask } from './build.ts';
export { ZoneAuthority, type EnumerationData, type ZoneAuthorityOptions, type ZoneReader } from './authority.ts';
export { StoreAuthority, StoreClusterFeed, type StoreAuthorityOptions, type StoreClusterFeedOptions } from './store-feed.ts';
export { emptyClusterState, type ClusterChange, type ClusterFeed, type ClusterFeedEvent, type ClusterState, type FeedSubscription } from './feed.ts';
export { FakeClusterFeed, type FakeState, type PutChange } from './fake-feed.ts';
export { MESOS_DNS_PREFIX, MESOS_DNS_RID, mesosDnsRoutes, registerMesosDnsApi, type MesosDnsApiOptions, type MesosDnsRoutesOptions } from './http-api.ts';
