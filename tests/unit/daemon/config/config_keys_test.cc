#include "daemon/config/config_keys.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace buckwild::daemon {
namespace {

TEST(ConfigKeysTest, SectionsAndKeysAreTheDocumentedOnes) {
  std::vector<std::string> sections;
  for (const auto& s : config_sections()) sections.emplace_back(s.name);
  EXPECT_EQ(sections, (std::vector<std::string>{"network", "protocol", "security", "crypto",
                                                "logging", "control", "metrics", "snmp", "ntp",
                                                "testing"}));
  const ConfigSection* net = find_config_section("network");
  ASSERT_NE(net, nullptr);
  std::vector<std::string> keys;
  for (const auto& k : net->keys) keys.emplace_back(k.name);
  EXPECT_EQ(keys, (std::vector<std::string>{"interface", "listen_address", "discovery_port",
                                            "virtual_device", "virtual_address", "virtual_address6",
                                            "mtu", "ebpf", "ebpf_attach", "ebpf_allow_fragments",
                                            "tun_offload", "udp_offload", "workers"}));
  EXPECT_EQ(find_config_section("psk"), nullptr);  // not a single-instance section
  EXPECT_EQ(find_config_key(*net, "mut"), nullptr);
  ASSERT_NE(find_config_key(*net, "mtu"), nullptr);
  EXPECT_EQ(find_config_key(*net, "mtu")->kind, ConfigKind::kInteger);
}

TEST(ConfigKeysTest, EveryKeyNameIsUniqueWithinItsSectionAndLowerCase) {
  for (const auto& s : config_sections()) {
    std::set<std::string_view> seen;
    for (const auto& k : s.keys) {
      EXPECT_TRUE(seen.insert(k.name).second) << s.name << "." << k.name;
      for (char c : k.name)
        EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << k.name;
      EXPECT_NE(k.apply, nullptr);
    }
  }
}

TEST(ConfigKeysTest, ApplyStoresOrExplains) {
  Config c;
  const ConfigKey* port = find_config_key(*find_config_section("network"), "discovery_port");
  ASSERT_NE(port, nullptr);
  EXPECT_EQ(port->apply(c, ConfigScalar{std::int64_t{4000}}), "");
  EXPECT_EQ(c.network.discovery_port, 4000);
  EXPECT_EQ(port->apply(c, ConfigScalar{std::int64_t{0}}), "must be between 1 and 65535, got 0");
  EXPECT_EQ(c.network.discovery_port, 4000);  // unchanged by a refused value

  const ConfigKey* facility = find_config_key(*find_config_section("logging"), "syslog_facility");
  EXPECT_EQ(facility->apply(c, ConfigScalar{std::string("local6")}), "");
  EXPECT_EQ(c.logging.syslog_facility, SyslogFacility::kLocal6);
  EXPECT_NE(facility->apply(c, ConfigScalar{std::string("kern")}).find("must be one of"),
            std::string::npos);
}

TEST(ConfigKeysTest, WorkersAreAutoOrOneToSixtyFour) {
  Config c;
  EXPECT_FALSE(c.network.workers) << "the default is auto";
  const ConfigKey* workers = find_config_key(*find_config_section("network"), "workers");
  ASSERT_NE(workers, nullptr);
  EXPECT_EQ(workers->apply(c, ConfigScalar{std::int64_t{3}}), "");
  EXPECT_EQ(c.network.workers, std::optional<std::uint32_t>(3));
  EXPECT_EQ(workers->apply(c, ConfigScalar{std::string("auto")}), "");
  EXPECT_FALSE(c.network.workers);
  EXPECT_EQ(workers->apply(c, ConfigScalar{std::int64_t{0}}),
            "must be \"auto\" or a number of workers 1..64, got 0");
  EXPECT_EQ(workers->apply(c, ConfigScalar{std::int64_t{65}}),
            "must be \"auto\" or a number of workers 1..64, got 65");
  EXPECT_EQ(workers->apply(c, ConfigScalar{std::string("all")}),
            "must be \"auto\" or a number of workers 1..64, got \"all\"");
}

TEST(ConfigKeysTest, ParsesEnvironmentText) {
  EXPECT_EQ(parse_config_scalar("42", ConfigKind::kInteger), ConfigScalar{std::int64_t{42}});
  EXPECT_EQ(parse_config_scalar("-7", ConfigKind::kInteger), ConfigScalar{std::int64_t{-7}});
  EXPECT_EQ(parse_config_scalar("4x", ConfigKind::kInteger).error(),
            "expected an integer, got \"4x\"");
  EXPECT_EQ(parse_config_scalar("", ConfigKind::kInteger).error(), "expected an integer, got \"\"");
  EXPECT_EQ(parse_config_scalar("99999999999999999999", ConfigKind::kInteger).error(),
            "expected an integer, got \"99999999999999999999\"");
  EXPECT_EQ(parse_config_scalar("true", ConfigKind::kBool), ConfigScalar{true});
  EXPECT_EQ(parse_config_scalar("0", ConfigKind::kBool), ConfigScalar{false});
  EXPECT_FALSE(parse_config_scalar("TRUE", ConfigKind::kBool));
  EXPECT_EQ(parse_config_scalar("x y", ConfigKind::kString), ConfigScalar{std::string("x y")});
  EXPECT_EQ(parse_config_scalar("auto", ConfigKind::kAutoOrInteger),
            ConfigScalar{std::string("auto")});
  EXPECT_EQ(parse_config_scalar("3", ConfigKind::kAutoOrInteger), ConfigScalar{std::int64_t{3}});
}

TEST(ConfigKeysTest, SuggestsCloseNames) {
  std::vector<std::string_view> names = {"mtu", "ebpf", "interface"};
  EXPECT_EQ(closest_name("mut", names), "mtu");
  EXPECT_EQ(closest_name("interfce", names), "interface");
  EXPECT_EQ(closest_name("colour", names), "");
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(config_kind_name(ConfigKind::kBool), std::string("a boolean (true or false)"));
}

}  // namespace
}  // namespace buckwild::daemon
