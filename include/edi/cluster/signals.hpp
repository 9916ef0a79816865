#pragma once
/// \file Checkpoint-and-stop on SIGTERM or SIGUSR1 (SLURM's `--signal`): the
/// handler only sets a flag; every rank finishes its current shard, commits
/// it, the ranks agree at the next collective, and the process exits with
/// kExitCheckpointed so that job scripts can requeue.
namespace edi::cluster {

/// Exit code after a signal-triggered checkpoint-and-stop (sysexits' EX_TEMPFAIL).
inline constexpr int kExitCheckpointed = 75;

/// Install the handlers (idempotent).
void install_stop_handlers();
/// True once SIGTERM or SIGUSR1 was received.
bool stop_requested();
/// Which signal, for messages (0 = none).
int stop_signal();

}  // namespace edi::cluster
