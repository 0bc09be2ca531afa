{
  "targets": [{
    "target_name": "mesh_kernels",
    "sources": ["kernels.c", "quant.c"],
    "cflags": ["-O3", "-ffast-math", "-march=native", "-fopenmp"],
    "ldflags": ["-fopenmp"]
  }]
}
