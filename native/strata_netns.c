/*
 * strata_netns: the three things Node cannot do by itself to run a task in
 * its own network namespace, on node-api only (so one build works across
 * Node versions):
 *
 *   createNetns(path, share)  a new network namespace, kept alive by a bind
 *                          mount on `path` (what `ip netns add` does); with
 *                          `share`, the directory is first made a shared
 *                          mount point, as iproute2 does for /run/netns
 *   removeNetns(path)      unmount and unlink it (`ip netns del`)
 *   withNetns(path, fn)    run `fn` synchronously with the calling (main)
 *                          thread inside the namespace at `path`, then
 *                          switch back; returns what `fn` returns
 *
 * Why synchronous on the main thread: setns(CLONE_NEWNET) changes only the
 * calling thread. Sockets keep the namespace they were created in, and a
 * child forked by this thread starts in this thread's namespace; so a
 * netlink socket opened inside `fn`, or a task spawned inside `fn`, lives
 * in the target namespace for good, while nothing else can run on the main
 * thread until `fn` returns (libuv's worker threads are never moved). If
 * switching back fails the process aborts: carrying on in the wrong
 * namespace would program the wrong kernel state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, "STRATA_NETNS", "node-api call failed"); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *what, const char *path) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(err));
  napi_value code, message, error, errno_value;
  napi_create_string_utf8(env, "OVERLAY_NETNS", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

/* The first argument as a path (at most PATH_MAX - 1 bytes). */
static int path_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv, char *path, size_t size) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "STRATA_NETNS", "missing argument");
    return -1;
  }
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  size_t len = 0;
  if (type != napi_string || napi_get_value_string_utf8(env, argv[0], path, size, &len) != napi_ok || len == 0 || len >= size - 1) {
    napi_throw_type_error(env, "STRATA_NETNS", "the path must be a non-empty string shorter than 4096 bytes");
    return -1;
  }
  return 0;
}

static void restore_or_abort(int saved) {
  if (setns(saved, CLONE_NEWNET) != 0) {
    fprintf(stderr, "strata_netns: cannot return to the original network namespace (%s); aborting\n", strerror(errno));
    abort();
  }
  close(saved);
}

/* Make the directory holding namespace mounts a shared mount point, as iproute2 does, so they propagate to other mount namespaces. */
static void share_dir(const char *dir) {
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0) return;
  if (errno != EINVAL) return;
  if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) == 0) mount("", dir, "none", MS_SHARED | MS_REC, NULL);
}

static napi_value create_netns(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[4096];
  if (path_arg(env, info, 2, argv, path, sizeof path) != 0) return NULL;
  bool share = false;
  if (napi_get_value_bool(env, argv[1], &share) != napi_ok) {
    napi_throw_type_error(env, "STRATA_NETNS", "the second argument must be a boolean");
    return NULL;
  }
  if (share) {
    char dir_buf[4096];
    strcpy(dir_buf, path);
    share_dir(dirname(dir_buf));
  }
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return throw_errno(env, errno, "create", path);
  close(fd);
  int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) {
    int err = errno;
    unlink(path);
    return throw_errno(env, err, "open the current namespace for", path);
  }
  if (unshare(CLONE_NEWNET) != 0) {
    int err = errno;
    close(saved);
    unlink(path);
    return throw_errno(env, err, "unshare a network namespace for", path);
  }
  int err = 0;
  if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) != 0) err = errno;
  restore_or_abort(saved);
  if (err != 0) {
    unlink(path);
    return throw_errno(env, err, "bind-mount the new namespace on", path);
  }
  return NULL;
}

static napi_value remove_netns(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[4096];
  if (path_arg(env, info, 1, argv, path, sizeof path) != 0) return NULL;
  if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) return throw_errno(env, errno, "unmount", path);
  if (unlink(path) != 0 && errno != ENOENT) return throw_errno(env, errno, "unlink", path);
  return NULL;
}

static napi_value with_netns(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[4096];
  if (path_arg(env, info, 2, argv, path, sizeof path) != 0) return NULL;
  napi_valuetype type;
  napi_typeof(env, argv[1], &type);
  if (type != napi_function) {
    napi_throw_type_error(env, "STRATA_NETNS", "the second argument must be a function");
    return NULL;
  }
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) return throw_errno(env, errno, "open the network namespace", path);
  int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) {
    int err = errno;
    close(target);
    return throw_errno(env, err, "open the current namespace to enter", path);
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int err = errno;
    close(target);
    close(saved);
    return throw_errno(env, err, "enter the network namespace", path);
  }
  close(target);
  napi_value global, result = NULL;
  napi_get_global(env, &global);
  napi_status status = napi_call_function(env, global, argv[1], 0, NULL, &result);
  restore_or_abort(saved);
  if (status != napi_ok) return NULL; /* the exception fn threw stays pending */
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"createNetns", NULL, create_netns, NULL, NULL, NULL, napi_default, NULL},
    {"removeNetns", NULL, remove_netns, NULL, NULL, NULL, napi_default, NULL},
    {"withNetns", NULL, with_netns, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
