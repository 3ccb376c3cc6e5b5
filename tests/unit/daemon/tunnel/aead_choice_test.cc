#include "daemon/tunnel/aead_choice.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace buckwild::daemon {
namespace {

TEST(AeadChoiceTest, MeasuresBothAndNamesTheFaster) {
  const AeadMeasurement m = measure_aeads();
  EXPECT_GT(m.chacha20_poly1305_gbps, 0.0);
  EXPECT_GT(m.aes_256_gcm_gbps, 0.0);
  EXPECT_EQ(m.faster, m.aes_256_gcm_gbps > m.chacha20_poly1305_gbps
                          ? crypto::AeadAlgorithm::kAes256Gcm
                          : crypto::AeadAlgorithm::kChaCha20Poly1305);
}

TEST(AeadChoiceTest, AnExplicitChoiceIsTaken) {
  EXPECT_EQ(preferred_aead(AeadChoice::kChaCha20Poly1305), crypto::AeadAlgorithm::kChaCha20Poly1305);
  EXPECT_EQ(preferred_aead(AeadChoice::kAes256Gcm), crypto::AeadAlgorithm::kAes256Gcm);
  EXPECT_EQ(describe_aead_choice(AeadChoice::kAes256Gcm),
            "AEAD preferred as responder: aes-256-gcm ([crypto] aead)");
}

// "auto" is measured once per process: every tunnel of the process agrees,
// and the start-up line names the choice and both rates.
// Begun in the background (as the daemon does before loading its eBPF
// programs), asked for from several threads at once: one answer.
TEST(AeadChoiceTest, AutoIsMeasuredOnceAndExplained) {
  CryptoConfig c;
  c.aead = AeadChoice::kAuto;
  begin_aead_measurement(c);
  begin_aead_measurement(c);
  std::vector<crypto::AeadAlgorithm> answers(4);
  std::vector<std::thread> askers;
  for (auto& a : answers) askers.emplace_back([&a] { a = preferred_aead(AeadChoice::kAuto); });
  for (auto& t : askers) t.join();
  const crypto::AeadAlgorithm first = answers[0];
  for (auto a : answers) EXPECT_EQ(a, first);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(preferred_aead(AeadChoice::kAuto), first);
  const std::string line = describe_aead_choice(AeadChoice::kAuto);
  const std::string name = first == crypto::AeadAlgorithm::kAes256Gcm ? "aes-256-gcm" : "chacha20-poly1305";
  EXPECT_EQ(line.rfind("AEAD preferred as responder: " + name + ", the faster here", 0), 0u) << line;
  EXPECT_NE(line.find("Gbit/s"), std::string::npos) << line;
}

}  // namespace
}  // namespace buckwild::daemon
