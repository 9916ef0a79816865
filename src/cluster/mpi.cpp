#include "edi/cluster/mpi.hpp"

#include <mpi.h>

#include <cstdlib>
#include <exception>
#include <stdexcept>

#include "edi/core/error.hpp"

namespace edi::cluster {

namespace {
void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string(what) + " failed: " + std::string(msg, static_cast<std::size_t>(len)));
  }
}
}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK") ||
         std::getenv("SLURM_STEP_ID");
}

Mpi::Mpi(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Mpi::~Mpi() {
  if (owns_) {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
  }
}

void Mpi::barrier() const { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

void Mpi::sum(std::vector<std::int64_t>& v) const {
  check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
}

void Mpi::sum(std::vector<double>& v) const {
  check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
}

std::int64_t Mpi::max(std::int64_t v) const {
  check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return v;
}

double Mpi::max(double v) const {
  check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return v;
}

std::string Mpi::broadcast(const std::string& s) const {
  std::int64_t n = static_cast<std::int64_t>(s.size());
  check(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = root() ? s : std::string(static_cast<std::size_t>(n), '\0');
  if (n) check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
}

std::vector<std::string> Mpi::gather(const std::string& s) const {
  int n = static_cast<int>(s.size());
  std::vector<int> sizes(root() ? static_cast<std::size_t>(size_) : 0);
  check(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<int> displs;
  std::string all;
  if (root()) {
    int total = 0;
    for (int k : sizes) displs.push_back(total), total += k;
    all.resize(static_cast<std::size_t>(total));
  }
  check(MPI_Gatherv(s.data(), n, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Gatherv");
  std::vector<std::string> out;
  if (root())
    for (std::size_t r = 0; r < sizes.size(); ++r) out.push_back(all.substr(static_cast<std::size_t>(displs[r]), static_cast<std::size_t>(sizes[r])));
  return out;
}

void Mpi::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

struct ClaimBoard::Impl {
  const Mpi* mpi = nullptr;
  int n = 0;
  std::int64_t* base = nullptr;
  MPI_Win win = MPI_WIN_NULL;
  int uncaught = 0;  ///< exceptions in flight when the board was made
};

ClaimBoard::ClaimBoard(const Mpi& mpi, int n) : impl_(std::make_unique<Impl>()) {
  impl_->mpi = &mpi;
  impl_->n = n;
  impl_->uncaught = std::uncaught_exceptions();
  // n claim slots and, last, the shared counter of next().
  const MPI_Aint bytes = mpi.root() ? static_cast<MPI_Aint>(n + 1) * static_cast<MPI_Aint>(sizeof(std::int64_t)) : 0;
  check(MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &impl_->base, &impl_->win), "MPI_Win_allocate");
  reset();
}

ClaimBoard::~ClaimBoard() {
  // MPI_Win_free is collective: while an error unwinds on this rank the others
  // wait elsewhere (in a reduction, a barrier), so freeing would hang the job
  // before the caller can report the error and abort. The window is left to
  // MPI_Abort (or to MPI_Finalize when every rank unwinds together).
  if (std::uncaught_exceptions() > impl_->uncaught) return;
  if (impl_->win != MPI_WIN_NULL) MPI_Win_free(&impl_->win);
}

bool ClaimBoard::claim(int slot) {
  const std::int64_t one = 1;
  std::int64_t before = 0;
  check(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, impl_->win), "MPI_Win_lock");
  check(MPI_Fetch_and_op(&one, &before, MPI_INT64_T, 0, slot, MPI_SUM, impl_->win), "MPI_Fetch_and_op");
  check(MPI_Win_unlock(0, impl_->win), "MPI_Win_unlock");
  return before == 0;
}

int ClaimBoard::next() {
  const std::int64_t one = 1;
  std::int64_t before = 0;
  check(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, impl_->win), "MPI_Win_lock");
  check(MPI_Fetch_and_op(&one, &before, MPI_INT64_T, 0, impl_->n, MPI_SUM, impl_->win), "MPI_Fetch_and_op");
  check(MPI_Win_unlock(0, impl_->win), "MPI_Win_unlock");
  return before >= impl_->n ? impl_->n : static_cast<int>(before);
}

std::int64_t ClaimBoard::add(int slot, std::int64_t value) {
  std::int64_t before = 0;
  check(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, impl_->win), "MPI_Win_lock");
  check(MPI_Fetch_and_op(&value, &before, MPI_INT64_T, 0, slot, MPI_SUM, impl_->win), "MPI_Fetch_and_op");
  check(MPI_Win_unlock(0, impl_->win), "MPI_Win_unlock");
  return before;
}

void ClaimBoard::reset() {
  impl_->mpi->barrier();
  if (impl_->mpi->root()) {
    check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, impl_->win), "MPI_Win_lock");
    for (int i = 0; i <= impl_->n; ++i) impl_->base[i] = 0;
    check(MPI_Win_unlock(0, impl_->win), "MPI_Win_unlock");
  }
  impl_->mpi->barrier();
}

}  // namespace edi::cluster
