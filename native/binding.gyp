{
  "targets": [{
    "target_name": "mesh_kernels",
    "sources": ["kernels.c"],
    "cflags": ["-O3", "-ffast-math", "-march=native", "-fopenmp"],
    "ldflags": ["-fopenmp"]
  }]
}
