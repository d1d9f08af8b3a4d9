// --device auto|gpu|cpu: which backend runs. The same binary starts on a machine with no GPU.

#include "segforge/backend.hpp"
#include "segforge/error.hpp"

namespace segforge {

#if !defined(SEGFORGE_HAS_CUDA)
bool cuda_available(std::string* why_not) {
  if (why_not) *why_not = "this build has no CUDA backend (built with SEGFORGE_CUDA=OFF or without the CUDA toolkit)";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  cuda_available(why_not);
  return nullptr;
}
#endif

std::unique_ptr<Backend> make_backend(DeviceChoice choice, int threads, std::string* note) {
  if (choice == DeviceChoice::cpu) return make_cpu_backend(threads);
  std::string why_not;
  if (std::unique_ptr<Backend> gpu = make_cuda_backend(&why_not)) return gpu;
  if (choice == DeviceChoice::gpu)
    throw InputError("--device gpu: no GPU backend: " + why_not + "; use --device auto or cpu");
  if (note) *note = "no GPU (" + why_not + "); running on the CPU";
  return make_cpu_backend(threads);
}

}  // namespace segforge
