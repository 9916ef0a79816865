// Two checkpoint slots per shard (src/cluster/checkpoint.cpp): the newest
// valid slot by its recorded pass wins, a corrupt newest slot falls back to
// the other, both corrupt means none, and a commit into a slot never leaves a
// temp file or touches the other slot.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "edi/cluster/checkpoint.hpp"
#include "edi/core/fs.hpp"

namespace fs = std::filesystem;
using namespace edi;
using namespace edi::cluster;

namespace {

constexpr int kSide = 8;

/// A 3-image shard whose state is filled with `value`.
engine::Shard make_shard(float value) {
  engine::Shard s;
  s.index = 4;
  s.ids = {"a/1.png", "a/2.png", "b/1.png"};
  s.labels = at::tensor(std::vector<std::int64_t>{0, 0, 1}, at::kLong);
  s.original = at::zeros({3, 3, kSide, kSide});
  s.state = at::full({3, 3, kSide, kSide}, value);
  s.records.resize(3);
  return s;
}

class Slots : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edi-slots-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    create_private_dir(dir_ / "checkpoints");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path slot(int i) const { return shard_checkpoint_path(dir_, 4, i); }
  void write(int i, int pass, float value) { write_shard_checkpoint(slot(i), make_shard(value), pass, "cfg"); }
  void truncate_half(int i) const { fs::resize_file(slot(i), fs::file_size(slot(i)) / 2); }
  fs::path dir_;
};

TEST_F(Slots, NamesAreTheShardFileAndItsBSlot) {
  EXPECT_EQ(slot(0).filename(), "shard-00004.h5");
  EXPECT_EQ(slot(1).filename(), "shard-00004.b.h5");
}

TEST_F(Slots, NewestByRecordedPassWinsWhicheverSlotHoldsIt) {
  write(1, 3, 0.3f);
  write(0, 4, 0.4f);
  NewestCheckpoint n = read_newest_checkpoint(dir_, 4, kSide);
  ASSERT_TRUE(n.checkpoint);
  EXPECT_EQ(n.slot, 0);
  EXPECT_EQ(n.checkpoint->pass, 4);
  EXPECT_FLOAT_EQ(n.checkpoint->state[0][0][0][0].item<float>(), 0.4f);
  EXPECT_TRUE(n.bad_slots.empty());
  write(1, 5, 0.5f);  // the older slot is replaced: slot 1 is now the newest
  n = read_newest_checkpoint(dir_, 4, kSide);
  ASSERT_TRUE(n.checkpoint);
  EXPECT_EQ(n.slot, 1);
  EXPECT_EQ(n.checkpoint->pass, 5);
}

TEST_F(Slots, CorruptNewestFallsBackToTheOther) {
  write(0, 2, 0.2f);
  write(1, 3, 0.3f);
  truncate_half(1);
  const NewestCheckpoint n = read_newest_checkpoint(dir_, 4, kSide);
  ASSERT_TRUE(n.checkpoint);
  EXPECT_EQ(n.slot, 0);
  EXPECT_EQ(n.checkpoint->pass, 2);
  EXPECT_FLOAT_EQ(n.checkpoint->state[0][0][0][0].item<float>(), 0.2f);
  ASSERT_EQ(n.bad_slots, std::vector<int>{1});
  EXPECT_NE(n.problems.at(0).find("shard-00004.b.h5"), std::string::npos) << n.problems.at(0);
}

TEST_F(Slots, ShapeThatDoesNotFitFallsBack) {
  write(0, 6, 0.6f);
  write_shard_checkpoint(slot(1), [] {
    engine::Shard s = make_shard(0.7f);
    s.state = at::full({3, 3, 2 * kSide, 2 * kSide}, 0.7f);  // not the model's side
    return s;
  }(), 7, "cfg");
  const NewestCheckpoint n = read_newest_checkpoint(dir_, 4, kSide);
  ASSERT_TRUE(n.checkpoint);
  EXPECT_EQ(n.checkpoint->pass, 6);
  ASSERT_EQ(n.problems.size(), 1u);
  EXPECT_NE(n.problems[0].find("inconsistent shapes"), std::string::npos) << n.problems[0];
}

TEST_F(Slots, BothCorruptGivesNoneAndNamesBoth) {
  write(0, 2, 0.2f);
  write(1, 3, 0.3f);
  truncate_half(0);
  truncate_half(1);
  const NewestCheckpoint n = read_newest_checkpoint(dir_, 4, kSide);
  EXPECT_FALSE(n.checkpoint);
  EXPECT_EQ(n.bad_slots.size(), 2u);
  EXPECT_EQ(n.problems.size(), 2u);
}

TEST_F(Slots, NoSlotIsNoneWithoutProblems) {
  const NewestCheckpoint n = read_newest_checkpoint(dir_, 4, kSide);
  EXPECT_FALSE(n.checkpoint);
  EXPECT_TRUE(n.problems.empty());
}

TEST_F(Slots, CommitLeavesNoTempFileAndKeepsTheOtherSlot) {
  write(0, 1, 0.1f);
  const std::string other_before = read_file(slot(0));
  write(1, 2, 0.2f);
  write(1, 3, 0.3f);  // into an existing slot: unlinked, then renamed into
  EXPECT_EQ(read_file(slot(0)), other_before);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "checkpoints")) {
    ++files;
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 2);
  const NewestCheckpoint n = read_newest_checkpoint(dir_, 4, kSide);
  ASSERT_TRUE(n.checkpoint);
  EXPECT_EQ(n.checkpoint->pass, 3);
}

}  // namespace
