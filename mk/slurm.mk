# The Slurm pipeline (pipelines/slurm/) and its test against a real single-node Slurm cluster.
#
#   make test-slurm    start slurmctld+slurmd+munge on 127.0.0.1 (installed from Debian if
#                      missing; needs root), run the smoke study through sbatch arrays with one
#                      task failing on purpose, compare with a local run, stop the daemons
#   make slurm-up      start the same single-node cluster, to try pipelines/slurm/submit.sh
#   make slurm-down    stop the daemons slurm-up started
#
# `make test` runs test-slurm through EXTRA_TESTS.
.PHONY: test-slurm slurm-up slurm-down slurm-status
EXTRA_TESTS += test-slurm

test-slurm: bins data/fashion-mnist
	tests/slurm/run-test.sh

slurm-up:
	tests/slurm/slurm-ci.sh start

slurm-down:
	tests/slurm/slurm-ci.sh stop

slurm-status:
	tests/slurm/slurm-ci.sh status
