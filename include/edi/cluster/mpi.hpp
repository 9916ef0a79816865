#pragma once
/// \file The MPI layer: one communicator, its rank and size, the collectives
/// the runner needs, and a shared claim board for handing shards out
/// dynamically. Works the same as one plain process (Open MPI singleton).
/// `mpi.h` stays in this stage's .cpp files.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edi::cluster {

class Mpi {
 public:
  /// Initialise MPI (funneled threads) if it is not already; finalises in the
  /// destructor if this object initialised it.
  Mpi(int* argc, char*** argv);
  ~Mpi();
  Mpi(const Mpi&) = delete;
  Mpi& operator=(const Mpi&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }

  void barrier() const;
  /// Element-wise sums / maxima over ranks (in place, every rank gets the result).
  void sum(std::vector<std::int64_t>& v) const;
  void sum(std::vector<double>& v) const;
  std::int64_t max(std::int64_t v) const;
  double max(double v) const;
  /// Rank 0's string to every rank.
  std::string broadcast(const std::string& s) const;
  /// Gather one string per rank on rank 0 (others get an empty vector).
  std::vector<std::string> gather(const std::string& s) const;
  /// Terminate every rank (after an error on one of them).
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};

/// A board of `n` slots on rank 0 that any rank claims atomically (one-sided
/// MPI fetch-and-add): the first claimant of a slot gets true. `reset()` is
/// collective.
class ClaimBoard {
 public:
  ClaimBoard(const Mpi& mpi, int n);
  ~ClaimBoard();
  ClaimBoard(const ClaimBoard&) = delete;
  ClaimBoard& operator=(const ClaimBoard&) = delete;
  /// True for the one rank whose claim of `slot` came first since reset().
  bool claim(int slot);
  /// The next index of a counter shared by all ranks (0, 1, 2, ... since
  /// reset(), each handed out once): one round trip, however many ranks.
  int next();
  /// Add `value` to slot `slot` atomically and return what it held before (a
  /// shared counter: `add(slot, 0)` reads it). One round trip.
  std::int64_t add(int slot, std::int64_t value);
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when MPI was started by a launcher (mpirun, srun) rather than as a
/// plain process.
bool launched_by_mpi();

}  // namespace edi::cluster
