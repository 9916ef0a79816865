// Model references: the one place that knows the faceapi: and human: prefixes
// and the built-in nets behind them.
#include "edi/models/model_ref.hpp"

#include "edi/core/error.hpp"

namespace edi::models {

const char* const kFaceApiRecognition = "faceapi:recognition";
const char* const kFaceApiAgeGender = "faceapi:age-gender";
const char* const kHumanFaceRes = "human:faceres";
const char* const kHumanFaceResAgeGender = "human:faceres-age-gender";

namespace {

constexpr const char* kFaceApiPrefix = "faceapi:";
constexpr const char* kHumanPrefix = "human:";
constexpr const char* kBlanks = " \t";

std::string trimmed(const std::string& s) {
  const auto a = s.find_first_not_of(kBlanks);
  if (a == std::string::npos) return std::string();
  return s.substr(a, s.find_last_not_of(kBlanks) - a + 1);
}

/// One reference, not a list; `text` is trimmed and not empty.
ModelRef parse_one(const std::string& text) {
  ModelRef r;
  r.text = text;
  r.kind = kind_of(text);
  if (r.kind == ModelKind::kFaceApi) {
    r.net = text.substr(std::char_traits<char>::length(kFaceApiPrefix));
    if (!r.is(kFaceApiRecognition) && !r.is(kFaceApiAgeGender))
      throw ModelError("unknown face-api model reference '" + text + "' (expected " + kFaceApiAgeGender + " or " +
                       kFaceApiRecognition + ")");
  } else if (r.kind == ModelKind::kHuman) {
    r.net = text.substr(std::char_traits<char>::length(kHumanPrefix));
    if (!r.is(kHumanFaceRes) && !r.is(kHumanFaceResAgeGender))
      throw ModelError("unknown human model reference '" + text + "' (expected " + kHumanFaceRes + " or " +
                       kHumanFaceResAgeGender + ")");
  }
  return r;
}

}  // namespace

ModelKind kind_of(const std::string& text) {
  if (text.find(',') != std::string::npos) return ModelKind::kEnsemble;
  const std::string t = trimmed(text);
  if (t.rfind(kFaceApiPrefix, 0) == 0) return ModelKind::kFaceApi;
  if (t.rfind(kHumanPrefix, 0) == 0) return ModelKind::kHuman;
  return ModelKind::kFile;
}

ModelRef ModelRef::parse(const std::string& text) {
  const std::string expected = std::string("a model file, ") + kFaceApiRecognition + ", " + kFaceApiAgeGender + ", " +
                               kHumanFaceRes + ", " + kHumanFaceResAgeGender + ", or A,B[,C] for ensemble steering";
  if (text.find(',') == std::string::npos) {
    const std::string one = trimmed(text);
    if (one.empty()) throw ConfigError("empty model reference (expected " + expected + ")");
    return parse_one(one);
  }
  ModelRef list;
  list.kind = ModelKind::kEnsemble;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = text.find(',', begin);
    const std::string item = trimmed(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (item.empty())
      throw ConfigError("model reference '" + text + "': expected model references separated by commas, found an empty one");
    list.members.push_back(parse_one(item));
    list.text += (list.text.empty() ? "" : ",") + item;
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return list;
}

bool ModelRef::is_embedder() const { return is(kFaceApiRecognition) || is(kHumanFaceRes); }

std::vector<ModelRef> ModelRef::list() const {
  if (kind == ModelKind::kEnsemble) return members;
  return {*this};
}

}  // namespace edi::models
