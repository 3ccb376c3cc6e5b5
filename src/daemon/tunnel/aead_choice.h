// Which AEAD this host prefers when `[crypto] aead = "auto"` (the default):
// the faster of ChaCha20-Poly1305 and AES-256-GCM on this CPU, by measuring
// both once per process at start-up (AES-GCM wins where the CPU has AES and
// carry-less multiply instructions, ChaCha20-Poly1305 elsewhere). The
// preference is what this host asks for as responder; an initiator offers
// both, so a session uses the responder's choice (docs/protocol.md §6.4).
#pragma once

#include <string>

#include "core/crypto/aead.h"
#include "daemon/config/config.h"

namespace buckwild::daemon {

struct AeadMeasurement {
  crypto::AeadAlgorithm faster = crypto::AeadAlgorithm::kChaCha20Poly1305;
  double chacha20_poly1305_gbps = 0;  // sealing 1400-byte datagrams, Gbit/s
  double aes_256_gcm_gbps = 0;
};

// Seals 1400-byte buffers with each algorithm in turn, three rounds of about
// 5 ms each, and keeps each one's best rate. About 30 ms of one core.
AeadMeasurement measure_aeads();

// Starts the process's one measurement on a thread of its own, when `c`
// asks for "auto" with an AEAD, so that it runs while start-up does other
// work (loading the eBPF programs takes longer). Idempotent.
void begin_aead_measurement(const CryptoConfig& c);

// The algorithm `choice` stands for here: itself, or for kAuto the faster one
// by the process's measurement (begun by begin_aead_measurement, else here),
// waited for on the first call and kept for the process.
crypto::AeadAlgorithm preferred_aead(AeadChoice choice);

// For the start-up log: what was chosen and why.
std::string describe_aead_choice(AeadChoice choice);

// Logs describe_aead_choice() at start-up when `c` protects packets with
// an AEAD (HMAC mode has no cipher to choose).
void log_aead_choice(const CryptoConfig& c);

}  // namespace buckwild::daemon
