{
  "targets": [{
    "target_name": "topiary_native",
    "sources": [
      "native/src/core.cc",
      "native/src/ops_math.cc",
      "native/src/ops_shape.cc",
      "native/src/ops_nn.cc",
      "native/src/rng_state.cc",
      "native/src/ops_sparse.cc"
    ],
    "include_dirs": [
      "<!@(node -p \"require('node-addon-api').include_dir\")",
      "<!@(node scripts/torch-paths.mjs include)",
      "/usr/include/eigen3"
    ],
    "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NAPI_EXPERIMENTAL", "_GLIBCXX_USE_CXX11_ABI=1"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
    "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
    "libraries": [
      "<!@(node scripts/torch-paths.mjs libdirs)",
      "<!@(node scripts/torch-paths.mjs libs)"
    ]
  }]
}
