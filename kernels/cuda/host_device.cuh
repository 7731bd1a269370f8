// RT_HOST_DEVICE: functions compiled for host and device under nvcc, and plain inline host
// functions when the header is included from host C++ (the CPU tests of the tilings).
#pragma once

#if defined(__CUDACC__)
#define RT_HOST_DEVICE __host__ __device__
#else
#define RT_HOST_DEVICE
#endif
