// The Python extension module gen_ext._C. `import gen_ext._C` loads this shared library, and
// with it the operator registrations of ops.cpp and the kernels. The module itself is empty:
// everything is reached through torch.ops.gen_ext. (LibTorch users link the same sources without
// this file.)
#include <Python.h>

PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
