// The shards' per-pass counts (issue 15 item 2): stored with a checkpoint and
// read back exactly (covered by its checksum), rejected when they claim more
// passes than the checkpoint is through; the completeness rule; what
// pass-major counts for a shard (ShardStore::counts_at); and the run's
// history summed from them (shard_history): a shard that ended earlier counts
// in later passes as its last pass did, recorded passes are kept.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <string>

#include "edi/cluster/checkpoint.hpp"
#include "edi/cluster/shard_loop.hpp"
#include "edi/cluster/shard_store.hpp"
#include "edi/core/fs.hpp"

namespace fs = std::filesystem;
using namespace edi;
using namespace edi::cluster;

namespace {

constexpr int kSide = 8;

engine::Shard make_shard() {
  engine::Shard s;
  s.index = 2;
  s.ids = {"a/1.png", "a/2.png", "b/1.png"};
  s.labels = at::tensor(std::vector<std::int64_t>{0, 0, 1}, at::kLong);
  s.original = at::zeros({3, 3, kSide, kSide});
  s.state = at::full({3, 3, kSide, kSide}, 0.5f);
  s.records.resize(3);
  return s;
}

class Counts : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edi-counts-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    create_private_dir(dir_ / "checkpoints");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path path() const { return shard_checkpoint_path(dir_, 2, 0); }
  fs::path dir_;
};

std::vector<ShardPassCounts> three_passes() {
  return {{3, 3, 3, 3, 0.25}, {2, 2, 3, 3, 0.125}, {1, 1, 3, 2, 0.5}};
}

bool same(const std::vector<ShardPassCounts>& a, const std::vector<ShardPassCounts>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].identified != b[i].identified || a[i].active != b[i].active || a[i].total != b[i].total ||
        a[i].image_passes != b[i].image_passes || a[i].seconds != b[i].seconds)
      return false;
  return true;
}

}  // namespace

TEST_F(Counts, StoredWithTheCheckpointAndReadBack) {
  write_shard_checkpoint(path(), make_shard(), 2, "cfg", -1, "", three_passes());
  std::string problem;
  const auto ck = read_shard_checkpoint(path(), &problem, kSide);
  ASSERT_TRUE(ck) << problem;
  EXPECT_TRUE(same(ck->counts, three_passes()));
  EXPECT_TRUE(ShardStore::counts_complete(ck->counts, ck->pass));
}

TEST_F(Counts, WithoutCountsTheCheckpointReadsAsBefore) {
  write_shard_checkpoint(path(), make_shard(), 2, "cfg");
  const auto ck = read_shard_checkpoint(path(), nullptr, kSide);
  ASSERT_TRUE(ck);
  EXPECT_TRUE(ck->counts.empty());
  EXPECT_FALSE(ShardStore::counts_complete(ck->counts, ck->pass));
}

TEST_F(Counts, MoreCountsThanPassesIsRejected) {
  write_shard_checkpoint(path(), make_shard(), 1, "cfg", -1, "", three_passes());  // 3 passes, through pass 1
  std::string problem;
  EXPECT_FALSE(read_shard_checkpoint(path(), &problem, kSide));
  EXPECT_NE(problem.find("inconsistent per-pass counts"), std::string::npos) << problem;
}

TEST(CountsRule, CompleteWhenEveryPassOrAFinalShardsLastPassIsCovered) {
  std::vector<ShardPassCounts> c = three_passes();
  EXPECT_TRUE(ShardStore::counts_complete(c, 2));
  EXPECT_FALSE(ShardStore::counts_complete(c, 3));  // not final (active 1 after pass 2): pass 3 missing
  c.back().active = 0;
  EXPECT_TRUE(ShardStore::counts_complete(c, 16));  // final, committed as of the pass limit
  EXPECT_FALSE(ShardStore::counts_complete(c, 1));  // more counts than passes
}

TEST(CountsRule, PassMajorCountsAShardByItsPassOrItsLastOne) {
  ShardStore::Held h;
  h.shard = make_shard();
  h.counts = three_passes();
  h.counts.back().active = 0;  // final after pass 2
  h.committed = 16;
  EXPECT_EQ(ShardStore::counts_at(h, 1).identified, 2);
  EXPECT_EQ(ShardStore::counts_at(h, 1).active, 2);
  EXPECT_EQ(ShardStore::counts_at(h, 9).identified, 1);  // after its end: as its last pass
  EXPECT_EQ(ShardStore::counts_at(h, 9).active, 0);
  // Without counts: the records as they stand.
  h.counts.clear();
  h.shard.records[0].identified = false;
  h.shard.records[1].identified = true;
  h.shard.records[2].identified = false;
  h.shard.records[0].status = engine::Status::kStopped;
  h.shard.records[2].status = engine::Status::kCapped;
  const engine::PassCounts c = ShardStore::counts_at(h, 3);
  EXPECT_EQ(c.identified, 1);
  EXPECT_EQ(c.active, 1);
  EXPECT_EQ(c.total, 3);
}

TEST(ShardHistory, EndedShardsCountAsTheirLastPassRecordedPassesAreKept) {
  // Shard A ends after pass 1, shard B after pass 3.
  const std::vector<ShardPassCounts> a = {{4, 4, 4, 4, 1.0}, {1, 0, 4, 4, 1.0}};
  const std::vector<ShardPassCounts> b = {{2, 2, 2, 2, 1.0}, {2, 2, 2, 2, 1.0}, {1, 1, 2, 2, 1.0}, {0, 0, 2, 1, 1.0}};
  std::vector<engine::PassReport> h = shard_history({a, b}, {}, 2);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].identified, 6);
  EXPECT_EQ(h[0].active, 6);
  EXPECT_EQ(h[1].identified, 3);
  EXPECT_EQ(h[1].active, 2);
  EXPECT_EQ(h[2].identified, 2);  // A's last pass (1) + B's pass 2
  EXPECT_EQ(h[2].total, 6);
  EXPECT_EQ(h[3].active, 0);
  EXPECT_EQ(h[3].identified, 1);
  EXPECT_DOUBLE_EQ(h[3].risk_percent, 100.0 * 1 / 6);
  EXPECT_DOUBLE_EQ(h[0].seconds, 1.0);  // (1 + 1) shard-seconds over 2 ranks
  EXPECT_DOUBLE_EQ(h[3].seconds, 0.5);  // only B ran pass 3
  EXPECT_DOUBLE_EQ(h[3].image_passes_per_s, 2.0);
  // A recorded pass (run.json, from pass-major passes before) is kept as recorded.
  engine::PassReport rec;
  rec.pass = 0;
  rec.identified = 6;
  rec.active = 6;
  rec.total = 6;
  rec.seconds = 42;
  h = shard_history({a, b}, {rec}, 2);
  EXPECT_DOUBLE_EQ(h[0].seconds, 42);
  // No shard: pass 0 with nothing in it, as pass-major records it.
  h = shard_history({}, {}, 1);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].total, 0);
  EXPECT_DOUBLE_EQ(h[0].risk_percent, 0.0);
}
