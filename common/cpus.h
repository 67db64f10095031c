// How many CPUs this process may run on: its affinity mask (taskset, a
// cgroup's cpuset), not every CPU the machine has. Sizes the work the
// daemon spreads over threads (zstd workers, the page-server pipeline).
#pragma once

namespace ckptd {

// At least 1.
unsigned UsableCpus();

}  // namespace ckptd
