// ModelRef: a model string parsed once (file, faceapi:NET, human:NET, ensemble
// list), and the hashes loading records in ModelInfo for the provenance.
#include <gtest/gtest.h>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/model_ref.hpp"
#include "edi/models/registry.hpp"
#include "fixtures.hpp"

namespace edi::models::testing {
namespace {

template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return std::string();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ModelRef, BuiltInNets) {
  const ModelRef rec = ModelRef::parse("faceapi:recognition");
  EXPECT_EQ(rec.kind, ModelKind::kFaceApi);
  EXPECT_EQ(rec.net, "recognition");
  EXPECT_EQ(rec.text, kFaceApiRecognition);
  EXPECT_TRUE(rec.builtin());
  EXPECT_TRUE(rec.is_embedder());
  EXPECT_TRUE(rec.is(kFaceApiRecognition));
  EXPECT_FALSE(rec.is(kFaceApiAgeGender));

  const ModelRef ag = ModelRef::parse(" faceapi:age-gender\t");
  EXPECT_EQ(ag.kind, ModelKind::kFaceApi);
  EXPECT_EQ(ag.text, "faceapi:age-gender");
  EXPECT_FALSE(ag.is_embedder());

  const ModelRef hf = ModelRef::parse("human:faceres");
  EXPECT_EQ(hf.kind, ModelKind::kHuman);
  EXPECT_EQ(hf.net, "faceres");
  EXPECT_TRUE(hf.is_embedder());
  const ModelRef hag = ModelRef::parse("human:faceres-age-gender");
  EXPECT_EQ(hag.kind, ModelKind::kHuman);
  EXPECT_FALSE(hag.is_embedder());
  EXPECT_EQ(hag.list().size(), 1u);
  EXPECT_EQ(hag.list()[0].text, hag.text);
}

TEST(ModelRef, FilesKeepTheirPath) {
  const ModelRef f = ModelRef::parse("models/fr.pt");
  EXPECT_EQ(f.kind, ModelKind::kFile);
  EXPECT_EQ(f.text, "models/fr.pt");
  EXPECT_TRUE(f.net.empty());
  EXPECT_FALSE(f.builtin());
  EXPECT_FALSE(f.is_embedder());
  // A prefix is a prefix only at the start.
  EXPECT_EQ(ModelRef::parse("dir/faceapi:recognition").kind, ModelKind::kFile);
}

TEST(ModelRef, EnsembleListsAreTrimmedAndCanonical) {
  const ModelRef e = ModelRef::parse(" a.pt , faceapi:recognition,human:faceres ");
  EXPECT_EQ(e.kind, ModelKind::kEnsemble);
  EXPECT_EQ(e.text, "a.pt,faceapi:recognition,human:faceres");
  ASSERT_EQ(e.members.size(), 3u);
  EXPECT_EQ(e.members[0].kind, ModelKind::kFile);
  EXPECT_EQ(e.members[0].text, "a.pt");
  EXPECT_EQ(e.members[1].kind, ModelKind::kFaceApi);
  EXPECT_EQ(e.members[2].kind, ModelKind::kHuman);
  EXPECT_FALSE(e.builtin());
  EXPECT_FALSE(e.is_embedder());
  EXPECT_EQ(e.list().size(), 3u);
  // The canonical text parses to the same reference.
  EXPECT_EQ(ModelRef::parse(e.text).text, e.text);
}

TEST(ModelRef, MalformedReferencesAreOneClearLine) {
  for (const std::string bad : {"", "  ", "a.pt,,b.pt", "a.pt,", ",a.pt"}) {
    const std::string msg = message_of<ConfigError>([&] { ModelRef::parse(bad); });
    EXPECT_TRUE(contains(msg, "model reference")) << bad << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  std::string msg = message_of<ModelError>([] { ModelRef::parse("faceapi:nope"); });
  EXPECT_TRUE(contains(msg, "'faceapi:nope'") && contains(msg, "faceapi:age-gender") && contains(msg, "faceapi:recognition"))
      << msg;
  msg = message_of<ModelError>([] { ModelRef::parse("a.pt,human:nope"); });
  EXPECT_TRUE(contains(msg, "'human:nope'") && contains(msg, "human:faceres")) << msg;
}

TEST(ModelRef, KindOfNeverThrows) {
  EXPECT_EQ(kind_of("faceapi:nope"), ModelKind::kFaceApi);
  EXPECT_EQ(kind_of("human:"), ModelKind::kHuman);
  EXPECT_EQ(kind_of("a,b"), ModelKind::kEnsemble);
  EXPECT_EQ(kind_of(""), ModelKind::kFile);
  EXPECT_EQ(kind_of("x.pt"), ModelKind::kFile);
}

TEST(ModelRef, LoadersTakeTheParsedReference) {
  std::string msg = message_of<ModelError>([] { load_classifier("a.pt,b.pt"); });
  EXPECT_TRUE(contains(msg, "a.pt,b.pt: an ensemble of models is not one classifier")) << msg;
  msg = message_of<ModelError>([] { load_classifier(ModelRef::parse("faceapi:recognition")); });
  EXPECT_TRUE(contains(msg, "faceapi:recognition is a face embedder")) << msg;
  msg = message_of<ModelError>([] { load_embedder("faceapi:age-gender"); });
  EXPECT_TRUE(contains(msg, "'faceapi:age-gender' is not an embedder")) << msg;
  EXPECT_FALSE(is_embedder_reference("faceapi:nope"));
  EXPECT_FALSE(is_embedder_reference(""));
  EXPECT_TRUE(is_embedder_reference("human:faceres"));
}

// Loading hashes the model file and its sidecar once; the provenance takes
// both from ModelInfo instead of reading the files again.
TEST(ModelRef, LoadingRecordsTheFileAndSidecarHashes) {
  const fs::path model = native_model("small-cnn", 3, 32);
  const auto loaded = load_classifier(model.string());
  EXPECT_EQ(loaded->info().file_sha256, sha256_file(model));
  EXPECT_EQ(loaded->info().sidecar_sha256, sha256_file(sidecar_path(model)));
  EXPECT_EQ(read_sidecar(model).file_sha256, sha256_file(sidecar_path(model)));
  EXPECT_TRUE(sidecar_from_json(read_text(sidecar_path(model)), "text").file_sha256.empty());
}

}  // namespace
}  // namespace edi::models::testing
