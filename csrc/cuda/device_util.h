// GPU discovery for the CUDA module: usable devices and their properties.
#pragma once

#include <string>
#include <vector>

namespace fastlayers::cuda {

struct DeviceInfo {
  int index;
  std::string name;
  int major, minor;              // compute capability
  size_t total_memory;           // bytes
  int multiprocessors;
};

// The CUDA runtime's view: whether any device can be used, and why not when none can
// (no driver, driver too old, no device...). Never throws for a missing GPU.
struct GpuStatus {
  bool usable = false;
  std::string reason;            // "" when usable
  int driver_version = 0;        // e.g. 13000; 0 without a driver
  int runtime_version = 0;
  std::vector<DeviceInfo> devices;
};

GpuStatus query_gpus();

}  // namespace fastlayers::cuda
