#include "daemon/config/psk_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "daemon/config/secret_base64.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

std::expected<crypto::SecretBytes, std::string> decode_psk(Bytes text) {
  auto key = decode_base64_secret(text);
  if (!key) {
    return std::unexpected(std::string(key.error() == Base64Problem::kEmpty
                                           ? "is empty"
                                           : "is not valid base64 (standard alphabet)"));
  }
  if (key->size() < kMinPskBytes || key->size() > kMaxPskBytes) {
    return std::unexpected("decodes to " + std::to_string(key->size()) +
                           " bytes; a PSK must be 16..64 bytes (buckwild genpsk makes 32)");
  }
  return std::move(*key);
}

std::expected<crypto::SecretBytes, std::string> read_psk_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return std::unexpected("cannot open " + path + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(path + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return std::unexpected(path + " is not a regular file");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::unexpected(path + " is accessible by group or others (mode " + mode +
                           "); run: chmod 600 " + path);
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxKeyFileBytes) {
    return std::unexpected(path + " is larger than 4 KiB; that is not a key file");
  }
  crypto::SecretBytes buf(kMaxKeyFileBytes);
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected("cannot read " + path + ": " + errno_text(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  auto key = decode_psk(buf.view().first(got));
  if (!key) return std::unexpected("the key in " + path + " " + key.error());
  return key;
}

}  // namespace buckwild::daemon
