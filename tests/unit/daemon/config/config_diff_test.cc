#include "daemon/config/config_diff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using Names = std::vector<std::string>;

// The test's configuration with some of its values replaced. Built by
// appending: g++ 12 at -O3 reports a false -Wrestrict on std::string::replace.
struct Text {
  std::string net = "10.77";
  std::string carol = "10.200.0.3";
  std::string old_key = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
  std::string extra;

  std::string str() const {
    std::string t;
    t += "[network]\nvirtual_address = \"";
    t += net;
    t += ".0.1/24\"\n\n[[psk]]\nid = \"main\"\nkey = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n";
    t += "\n[[psk]]\nid = \"old\"\nkey = \"";
    t += old_key;
    t += "\"\n\n[[peer]]\nname = \"bob\"\nendpoint = \"10.200.0.2\"\nvirtual_address = \"";
    t += net;
    t += ".0.2\"\npsk = \"main\"\n\n[[peer]]\nname = \"carol\"\nendpoint = \"";
    t += carol;
    t += "\"\nvirtual_address = \"";
    t += net;
    t += ".0.3\"\npsk = \"old\"\n";
    t += extra;
    return t;
  }
};

class ConfigDiffTest : public ::testing::Test {
 protected:
  Config load(const std::string& text) {
    std::string name = std::to_string(n_++);
    name += ".toml";
    auto c = load_config(dir_.write(name, text, 0600), {});
    EXPECT_TRUE(c) << (c ? "" : c.error().front());
    return c ? std::move(*c) : Config{};
  }
  testing::TempDir dir_;
  int n_ = 0;
};

TEST_F(ConfigDiffTest, TheSameFileDiffersInNothing) {
  Config a = load(Text{}.str());
  Config b = load(Text{}.str());
  EXPECT_TRUE(diff_config(a, b).empty());
}

TEST_F(ConfigDiffTest, PeersAndPsksAreMatchedByNameAndId) {
  Config a = load(Text{}.str());
  // carol moves, dave arrives, "old" gets a new key, "new" is added.
  Text t;
  t.carol = "10.200.0.9";
  t.old_key = "ICEiIyQmJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
  t.extra = R"(
[[peer]]
name = "dave"
endpoint = "10.200.0.4"
virtual_address = "10.77.0.4"
psk = "new"

[[psk]]
id = "new"
key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)";
  Config b = load(t.str());
  const ConfigDiff d = diff_config(a, b);
  EXPECT_EQ(d.peers_added, Names{"dave"});
  EXPECT_EQ(d.peers_changed, Names{"carol"});
  EXPECT_TRUE(d.peers_removed.empty());
  EXPECT_EQ(d.psks_added, Names{"new"});
  EXPECT_EQ(d.psks_changed, Names{"old"});
  EXPECT_TRUE(d.psks_removed.empty());
  EXPECT_TRUE(d.fixed.empty());
  EXPECT_TRUE(d.settings.empty());
  // And back: what was added is removed.
  const ConfigDiff back = diff_config(b, a);
  EXPECT_EQ(back.peers_removed, Names{"dave"});
  EXPECT_EQ(back.psks_removed, Names{"new"});
}

TEST_F(ConfigDiffTest, TheLogFormatIsLive) {
  Config a = load(Text{}.str());
  Text json;
  json.extra = "[logging]\nformat = \"json\"\n";
  Config b = load(json.str());
  const ConfigDiff d = diff_config(a, b);
  EXPECT_EQ(d.settings, Names{"logging.format"});
  EXPECT_TRUE(d.fixed.empty());
  EXPECT_TRUE(fixed_key_problems(d).empty());
  EXPECT_EQ(diff_config(b, a).settings, Names{"logging.format"});  // and back to text
}

// The test clock offset steps a running daemon's clock (e2e: RESYNC after
// clocks stepped apart); the drift and the rekey interval stay fixed.
TEST_F(ConfigDiffTest, TheTestClockOffsetIsLiveTheOtherTestAidsAreFixed) {
  Config a = load(Text{}.str());
  Text stepped;
  stepped.extra = "[testing]\nclock_offset_ms = 5000\n";
  const ConfigDiff d = diff_config(a, load(stepped.str()));
  EXPECT_EQ(d.settings, Names{"testing.clock_offset_ms"});
  EXPECT_TRUE(d.fixed.empty());
  Text drifting;
  drifting.extra = "[testing]\nclock_drift_ppm = 100\nrekey_interval_seconds = 10\n";
  EXPECT_EQ(diff_config(a, load(drifting.str())).fixed,
            (Names{"testing.clock_drift_ppm", "testing.rekey_interval_seconds"}));
}

TEST_F(ConfigDiffTest, LimitsAndLogLevelAreLiveTheDeviceAndAddressesAreFixed) {
  Config a = load(Text{}.str());
  Text live_text;
  live_text.extra = "[security]\nmax_connections_per_source = 7\n[logging]\nlevel = \"debug\"\n";
  const ConfigDiff live = diff_config(a, load(live_text.str()));
  EXPECT_EQ(live.settings, (Names{"security.max_connections_per_source", "logging.level"}));
  EXPECT_TRUE(live.fixed.empty());

  Text moved;
  moved.net = "10.78";
  moved.extra = "[protocol]\ntcp_mode = \"packet\"\n";
  const ConfigDiff fixed = diff_config(a, load(moved.str()));
  EXPECT_EQ(fixed.fixed, (Names{"network.virtual_address", "protocol.tcp_mode"}));
  EXPECT_EQ(fixed_key_problems(fixed).front(),
            "network.virtual_address cannot change while running; restart buckwild to change it");
  // The peers moved with the network: they changed too.
  EXPECT_EQ(fixed.peers_changed, (Names{"bob", "carol"}));
}

TEST_F(ConfigDiffTest, TheOffloadsTakeARestart) {
  Config a = load(Text{}.str());
  std::string text = Text{}.str();
  text.replace(text.find("[network]\n"), 10, "[network]\nudp_offload = false\ntun_offload = false\n");
  const ConfigDiff d = diff_config(a, load(text));
  EXPECT_EQ(d.fixed, (Names{"network.tun_offload", "network.udp_offload"}));
  EXPECT_TRUE(d.settings.empty());
}

}  // namespace
}  // namespace buckwild::daemon
