// Helpers shared by the daemon tests: temporary directories, and running a
// test body as root inside a private network namespace.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace buckwild::daemon::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/buckwild-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // Writes `text` to `name` inside the directory with `mode`; returns the path.
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) const {
    std::string p = path_ + "/" + name;
    {
      std::ofstream out(p, std::ios::binary | std::ios::trunc);
      out << text;
    }
    ::chmod(p.c_str(), mode);
    return p;
  }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline bool is_root() {
  return ::geteuid() == 0;
}

// Runs `body` in a forked child that first moves into namespaces of its own
// (`flags`: CLONE_NEWNET, CLONE_NEWNS...), so nothing it does reaches the
// host. gtest assertions inside `body` work: failures are printed by the
// child and turn into a non-zero exit, which fails the test here.
inline void run_isolated(int flags, const std::function<void()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    if (::unshare(flags) != 0) {
      std::fprintf(stderr, "unshare(0x%x) failed: %s\n", static_cast<unsigned>(flags),
                   std::strerror(errno));
      std::_Exit(3);
    }
    body();
    std::fflush(nullptr);
    std::_Exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the isolated test body failed (see its output above)";
}

}  // namespace buckwild::daemon::testing
