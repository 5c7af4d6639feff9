#!/usr/bin/env sh
# Give each MPI rank of a node its own GPU among identical ones, then run the command:
#   mpirun -np 8 scripts/mpi-gpu.sh node dist/hvp.js pretrain ...
# Dawn picks an adapter by name only, so identical GPUs cannot be told apart from inside the process.
# Mesa's Vulkan device-select layer (package mesa-vulkan-drivers) can: DRI_PRIME=pci-DDDD_BB_DD_F!
# hides every device but the one at that PCI address. The local rank (Open MPI or Slurm) picks the
# line of `nvidia-smi --query-gpu=pci.bus_id` (00000000:3B:00.0 becomes pci-0000_3b_00_0).
set -eu
local_rank="${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-0}}"
bus=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader | sed -n "$((local_rank + 1))p")
if [ -z "$bus" ]; then
  echo "mpi-gpu.sh: local rank $local_rank has no GPU (nvidia-smi lists $(nvidia-smi -L | wc -l))" >&2
  exit 1
fi
# The last 12 characters are DDDD:BB:DD.F (nvidia-smi pads the domain to 8 digits).
export DRI_PRIME="pci-$(printf '%s' "$bus" | tail -c 12 | tr 'A-F:.' 'a-f__')!"
exec "$@"
