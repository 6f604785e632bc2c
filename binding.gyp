{
  "targets": [
    {
      "target_name": "strata_netns",
      "sources": ["native/strata_netns.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
