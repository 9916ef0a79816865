// The run-directory module: RunRecord JSON, the one flattening, the CSV/JSON/HDF5 sinks writing the
// same tables, and HDF5 wrapped once (errors name file and dataset with the bottom of the HDF5 stack;
// HDF5 itself prints nothing).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/rundir/h5.hpp"
#include "edi/rundir/layout.hpp"
#include "edi/rundir/record.hpp"
#include "edi/rundir/sink.hpp"
#include "support/testing.hpp"

using namespace edi;
using namespace edi::rundir;
using nlohmann::json;

namespace {

RunRecord record(const std::string& id, engine::Status status, std::vector<engine::TrajectoryPoint> t) {
  RunRecord r;
  r.id = id;
  r.identity = "alice";
  r.label = 1;
  r.split = data::Split::kTest;
  r.record.status = status;
  r.record.stop_pass = status == engine::Status::kStopped ? 2 : -1;
  r.record.escalation = 1;
  r.record.stalls = 3;
  r.record.identified = status != engine::Status::kStopped;
  r.record.trajectory = std::move(t);
  return r;
}

std::vector<RunRecord> two_records() {
  return {record("alice/1.jpg", engine::Status::kStopped, {{0, 0.9f, 0, 1, 0.f, 0.f, 0.f}, {2, 0.123456789f, 3, 0, 0.25f, 31.5f, 0.1f}}),
          record("alice/2.jpg", engine::Status::kCapped, {})};
}

}  // namespace

TEST(RunRecord, JsonRoundTrip) {
  for (const RunRecord& r : two_records()) {
    const json j = r;
    const RunRecord back = j.get<RunRecord>();
    EXPECT_EQ(json(back), j);
    EXPECT_EQ(back.record.trajectory.size(), r.record.trajectory.size());
  }
  json j = two_records()[0];
  EXPECT_EQ(j.at("status"), "stopped");
  EXPECT_EQ(j.at("split"), "test");
  j.erase("stalls");
  try {
    (void)j.get<RunRecord>();
    FAIL() << "a record without 'stalls' was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no key 'stalls'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("alice/1.jpg"), std::string::npos) << e.what();
  }
  j = two_records()[0];
  j["status"] = "gone";
  EXPECT_THROW((void)j.get<RunRecord>(), DataError);
}

TEST(RecordColumns, FlattenOnceUnflattenBack) {
  const std::vector<RunRecord> rs = two_records();
  const RecordColumns c = flatten(rs);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.t_image, (std::vector<std::int32_t>{0, 0}));
  EXPECT_EQ(c.evaluations, (std::vector<std::int32_t>{2, 0}));
  EXPECT_FLOAT_EQ(c.final_prob[0], 0.123456789f);
  EXPECT_EQ(c.final_top1[1], -1);  // no evaluation: the defaults
  EXPECT_EQ(column_problem(c, 2), "");
  const std::vector<engine::ImageRecord> back = unflatten(c);
  for (std::size_t i = 0; i < rs.size(); ++i) {
    EXPECT_EQ(back[i].status, rs[i].record.status);
    EXPECT_EQ(back[i].stalls, rs[i].record.stalls);
    EXPECT_EQ(back[i].trajectory.size(), rs[i].record.trajectory.size());
  }
  RecordColumns bad = c;
  bad.t_image[1] = 7;
  EXPECT_EQ(column_problem(bad, 2), "trajectory refers to image 7");
  bad = c;
  bad.status[0] = 9;
  EXPECT_EQ(column_problem(bad, 2), "unknown image status 9");
  EXPECT_EQ(column_problem(c, 3), "inconsistent record sizes");
}

TEST(Sinks, CsvTextIsTheRunnersFormat) {
  const std::vector<RunRecord> rs = two_records();
  const RecordColumns c = flatten(rs);
  // The header and number formats outcomes.csv has always had (integers in full, floats %g with 7 digits).
  EXPECT_EQ(CsvSink::text(outcomes_table(rs, c)),
            "id,identity,label,split,status,stop_pass,evaluations,escalation,stalls,final_true_prob,final_true_rank,final_top1,"
            "identified,psnr,changed_share,linf\n"
            "alice/1.jpg,alice,1,test,stopped,2,2,1,3,0.1234568,3,0,0,31.5,0.25,0.1\n"
            "alice/2.jpg,alice,1,test,capped,-1,0,1,3,0,0,-1,1,0,0,0\n");
  EXPECT_EQ(CsvSink::text(trajectories_table(rs, c)),
            "id,pass,true_prob,true_rank,top1,changed_share,psnr,linf\n"
            "alice/1.jpg,0,0.9,0,1,0,0,0\n"
            "alice/1.jpg,2,0.1234568,3,0,0.25,31.5,0.1\n");
  EXPECT_THROW(CsvSink::to_file("x.csv").attribute("a", std::int64_t{1}), std::logic_error);
  Table ragged{"t", {{"a", std::vector<std::int32_t>{1, 2}}, {"b", std::vector<float>{1.f}}}};
  EXPECT_THROW(ragged.check(), std::logic_error);
}

TEST(Sinks, JsonRowsAndAttributes) {
  JsonSink j;
  j.attribute("passes_run", std::int64_t{4});
  j.attribute("final_risk_percent", 12.5);
  j.table({"passes", {{"pass", std::vector<std::int32_t>{0, 1}}, {"risk_percent", std::vector<double>{100.0, 40.0}}}});
  EXPECT_EQ(j.document().dump(),
            R"({"final_risk_percent":12.5,"passes":[{"pass":0,"risk_percent":100.0},{"pass":1,"risk_percent":40.0}],"passes_run":4})");
  edi::testing::TempDir tmp;
  j.commit(tmp / "s.json");
  EXPECT_EQ(json::parse(read_file(tmp / "s.json")), j.document());
}

TEST(H5, SinkWritesTablesThatReadBack) {
  edi::testing::TempDir tmp;
  const std::vector<RunRecord> rs = two_records();
  const RecordColumns c = flatten(rs);
  {
    h5::File f = h5::File::create(tmp / "r.h5");
    H5Sink sink(f);
    sink.attribute("format", std::string("edi-anon-results"));
    sink.attribute("passes_run", std::int64_t{2});
    sink.attribute("risk", 12.5);
    sink.table(results_image_table(rs, c));
    sink.table(trajectory_table(c));
    f.flush();
    f.close();
  }
  const h5::File f = h5::File::open_read(tmp / "r.h5");
  const h5::Group root = f.root();
  EXPECT_EQ(h5::get_attr_string(root, "format"), "edi-anon-results");
  EXPECT_EQ(h5::get_attr_int(root, "passes_run"), 2);
  EXPECT_DOUBLE_EQ(h5::get_attr_double(root, "risk"), 12.5);
  const h5::Group images = f.open_group("images");
  EXPECT_EQ(h5::read_strings(images, "id"), (std::vector<std::string>{"alice/1.jpg", "alice/2.jpg"}));
  EXPECT_EQ(h5::read_bytes(images, "status"), c.status);
  EXPECT_EQ(h5::read_floats(images, "final_true_prob"), c.final_prob);
  EXPECT_TRUE(h5::has_dataset(images, "linf"));
  EXPECT_FALSE(h5::has_dataset(images, "nope"));
  const h5::Group t = f.open_group("trajectory");
  EXPECT_EQ(h5::read_ints(t, "image"), c.t_image);
  EXPECT_EQ(h5::dims(t, "pass"), (h5::Dims{2}));
}

TEST(H5, ErrorsNameFileAndDatasetAndHdf5PrintsNothing) {
  edi::testing::TempDir tmp;
  const std::string path = (tmp / "e.h5").string();
  ::testing::internal::CaptureStderr();
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::write_vector(root, "x", std::vector<float>{1.f});
    try {
      h5::write_vector(root, "x", std::vector<float>{2.f});  // exists already
      FAIL() << "a second dataset 'x' was created";
    } catch (const IoError& e) {
      const std::string w = e.what();
      EXPECT_EQ(w.rfind(path + ":/x: cannot write the dataset (", 0), 0u) << w;
      EXPECT_EQ(w.back(), ')') << w;
      EXPECT_GT(w.size(), path.size() + 40) << "no bottom of the HDF5 error stack: " << w;
      EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    }
    try {
      (void)h5::read_ints(root, "missing");
      FAIL();
    } catch (const IoError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ":/missing: cannot read the dataset (", 0), 0u) << e.what();
    }
    try {
      (void)h5::get_attr_int(root, "nope");
      FAIL();
    } catch (const IoError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ":/@nope: cannot read the attribute (", 0), 0u) << e.what();
    }
  }  // the destructor closes without throwing
  try {
    (void)h5::File::open_read(tmp / "absent.h5");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.h5: cannot open the file ("), std::string::npos) << e.what();
    EXPECT_EQ(e.exit_code(), 4);
  }
  write_file_atomic(tmp / "garbage.h5", "not an HDF5 file at all");
  EXPECT_THROW((void)h5::File::open_read(tmp / "garbage.h5"), IoError);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "HDF5 printed its error stack";
}

TEST(Layout, NamesAndSnapshots) {
  edi::testing::TempDir tmp;
  EXPECT_EQ(example_capture_path("R", 3), std::filesystem::path("R/checkpoints/examples/shard-00003.h5"));
  EXPECT_EQ(run_history_path("R"), std::filesystem::path("R/checkpoints/run.json"));
  EXPECT_EQ(image_path("R/images", "a/b.jpg"), std::filesystem::path("R/images/a/b.png"));
  EXPECT_FALSE(run_finished(tmp.path()));
  write_file_atomic(tmp / file::kComplete, "{}\n");
  EXPECT_TRUE(run_finished(tmp.path()));
  for (const char* t : {"20", "55", "x"}) {
    std::filesystem::create_directories(tmp / dir::kSnapshots / t);
    write_file_atomic(tmp / dir::kSnapshots / t / file::kSnapshotMarker, "{}\n");
  }
  std::filesystem::create_directories(tmp / dir::kSnapshots / "70");  // no marker: not a snapshot
  const auto snaps = list_snapshots(tmp.path());
  ASSERT_EQ(snaps.size(), 3u);
  EXPECT_EQ(snaps[0].filename(), "55");
  EXPECT_EQ(snaps[1].filename(), "20");
  EXPECT_EQ(snaps[2].filename(), "x");
}
