#pragma once
/// \file Error hierarchy. Library code throws these; the CLI catches them once,
/// prints `edi-anon: error: <message>` and exits with the class's code.
#include <stdexcept>
#include <string>

namespace edi {

/// Base of every error edi raises on purpose. Messages are one line and name
/// the file, key or value involved and what was expected.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  /// Process exit code used when this error reaches `main`.
  virtual int exit_code() const noexcept { return 1; }
};

/// A bad option, config key or value: detected before any work starts.
class ConfigError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

/// A bad input item (image, label row, manifest line). Per-item data errors are
/// normally quarantined; this reaches `main` only when a whole input is unusable.
class DataError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 3; }
};

/// A file-system or HDF5 failure (cannot create, write, rename, read).
class IoError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 4; }
};

/// A model file that cannot be loaded or does not match its sidecar or data.
class ModelError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 5; }
};

}  // namespace edi
