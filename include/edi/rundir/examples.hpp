#pragma once
/// \file Example images of a run (`--examples N`, default 0: none). The first
/// N images selected for the run (id order; a quarantined one is left out)
/// are kept in results.h5 with their pass-0 attribution and the selection
/// mask the engine actually applied, captured through the engine's
/// MaskObserver during the run (never recomputed by running the model again).
/// The rank that perturbs an example at pass 0 writes what it captured to
/// `checkpoints/examples/shard-NNNNN.h5` (atomically), so that the capture
/// survives a resume and reaches rank 0 whatever the rank count.
///
/// The example ORIGINALS are faces with identity names: they are stored only
/// when N > 0 was asked for.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "edi/data/image.hpp"
#include "edi/data/manifest.hpp"
#include "edi/engine/engine.hpp"
#include "edi/rundir/h5.hpp"

namespace edi::rundir {

/// The first `n` ids of `selected` (indices into the manifest's entries, id order).
std::vector<std::string> example_ids(const data::Manifest& manifest, const std::vector<std::size_t>& selected, int n);

/// Captures the examples' pass-0 masks and attributions (one per rank).
class ExampleCapture {
 public:
  ExampleCapture(std::filesystem::path rundir, const std::vector<std::string>& ids, std::string config_sha256);
  bool empty() const { return ids_.empty(); }
  /// For Engine::set_mask_observer. Throws IoError when a capture file cannot be written.
  engine::Engine::MaskObserver observer();

 private:
  struct Captured {
    at::Tensor mask, attribution;  ///< one image each (3×S×S)
  };
  void observe(const engine::Shard& shard, int pass, const std::vector<int>& local, const at::Tensor& mask);
  std::filesystem::path rundir_;
  std::set<std::string> ids_;
  std::string config_sha256_;
  std::map<int, std::map<std::string, Captured>> by_shard_;
};

/// What results.h5 keeps of the examples.
struct Examples {
  std::vector<std::string> ids;
  at::Tensor original, anonymized;  ///< E×3×S×S float (original at the model's resolution)
  at::Tensor attribution;           ///< E×3×S×S float, pass 0 (zeros where not captured)
  at::Tensor mask;                  ///< E×C×S×S uint8, the applied selection at pass 0 (zeros where not captured)
  std::vector<std::uint8_t> captured;  ///< 1: mask and attribution were captured (0: stopped at pass 0, or not observed)
};

/// The examples among `shards` (final states) with their captures from
/// RUNDIR/checkpoints/examples/ (made under `config_sha256`; others are
/// ignored). The originals are decoded again from the data (`size`, `resize`).
Examples collect_examples(const std::filesystem::path& rundir, const std::vector<std::string>& ids, const std::string& config_sha256,
                          const std::vector<const engine::Shard*>& shards, const data::Manifest& manifest, int size,
                          data::ResizeMode resize);

/// /examples of results.h5 (nothing when there are no examples).
void write_examples(const h5::File& file, const Examples& examples);

}  // namespace edi::rundir
