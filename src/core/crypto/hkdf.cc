#include "core/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>

#include "core/crypto/hmac.h"

namespace buckwild::crypto {
namespace {

constexpr std::size_t kMaxOutput = 255 * kSha256Size;

// OpenSSL refuses octet-string parameters with a null data pointer, even when
// empty, so empty inputs point here.
constexpr std::uint8_t kEmpty[1] = {0};

OSSL_PARAM octets(const char* name, Bytes b) {
  void* p = const_cast<std::uint8_t*>(b.empty() ? kEmpty : b.data());
  return OSSL_PARAM_construct_octet_string(name, p, b.size());
}

// Runs OpenSSL's HKDF in `mode`, writing straight into `out` so no copy of
// the output ever sits in ordinary memory. OpenSSL clears its own key copies.
bool run_hkdf(int mode, Bytes key, Bytes salt, Bytes info, SecretBytes& out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return false;

  char digest[] = "SHA256";
  OSSL_PARAM params[6];
  std::size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = octets(OSSL_KDF_PARAM_KEY, key);
  // No salt parameter means the RFC's default: HashLen zero bytes.
  if (!salt.empty()) params[n++] = octets(OSSL_KDF_PARAM_SALT, salt);
  if (!info.empty()) params[n++] = octets(OSSL_KDF_PARAM_INFO, info);
  params[n] = OSSL_PARAM_construct_end();

  bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

}  // namespace

SecretBytes hkdf_extract(Bytes salt, Bytes ikm) {
  SecretBytes prk(kSha256Size);
  if (!run_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, salt, {}, prk)) {
    // Only reachable on allocation failure; there is no Result to carry it.
    std::fputs("buckwild: HKDF-Extract failed\n", stderr);
    std::abort();
  }
  return prk;
}

Result<SecretBytes> hkdf_expand(Bytes prk, Bytes info, std::size_t length) {
  if (length == 0 || length > kMaxOutput) {
    return fail(ErrorCode::kInvalidParameter, "HKDF-Expand length out of range");
  }
  if (prk.size() < kSha256Size) {
    return fail(ErrorCode::kInvalidParameter, "HKDF-Expand PRK shorter than 32 bytes");
  }
  SecretBytes okm(length);
  if (!run_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, {}, info, okm)) {
    return fail(ErrorCode::kMemoryExhausted, "HKDF-Expand failed");
  }
  return okm;
}

Result<SecretBytes> hkdf(Bytes salt, Bytes ikm, Bytes info, std::size_t length) {
  SecretBytes prk = hkdf_extract(salt, ikm);
  return hkdf_expand(prk.view(), info, length);
}

}  // namespace buckwild::crypto
