// keel_sim entry point: `keel_sim list`, `keel_sim all`, `keel_sim NAME...`,
// with --json, --quick and --seed N.
#include "sim/sim.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace keel_sim {

std::vector<entry>& registry() {
  static std::vector<entry> entries;
  return entries;
}

namespace {

std::string text(const cell& c) {
  if (const auto* s = std::get_if<std::string>(&c)) return *s;
  if (const auto* b = std::get_if<bool>(&c)) return *b ? "yes" : "no";
  char buf[64];
  if (const auto* i = std::get_if<std::int64_t>(&c)) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(*i));
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", std::get<double>(c));
  }
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_cell(const cell& c) {
  if (const auto* s = std::get_if<std::string>(&c)) return json_string(*s);
  if (const auto* b = std::get_if<bool>(&c)) return *b ? "true" : "false";
  char buf[64];
  if (const auto* i = std::get_if<std::int64_t>(&c)) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(*i));
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", std::get<double>(c));
  }
  return buf;
}

void print_text(const std::string& name, const report& r) {
  std::printf("== %s ==\n", name.c_str());
  for (const auto& t : r.tables) {
    std::vector<std::size_t> width(t.columns.size());
    for (std::size_t c = 0; c < t.columns.size(); ++c) width[c] = t.columns[c].size();
    for (const auto& row : t.rows)
      for (std::size_t c = 0; c < row.size() && c < width.size(); ++c)
        width[c] = std::max(width[c], text(row[c]).size());
    std::printf("\n%s\n", t.title.c_str());
    auto line = [&](auto&& at) {
      for (std::size_t c = 0; c < width.size(); ++c)
        std::printf(c == 0 ? "%-*s" : "  %*s", static_cast<int>(width[c]), at(c).c_str());
      std::printf("\n");
    };
    line([&](std::size_t c) { return t.columns[c]; });
    line([&](std::size_t c) { return std::string(width[c], '-'); });
    for (const auto& row : t.rows) line([&](std::size_t c) { return c < row.size() ? text(row[c]) : std::string(); });
    if (!t.note.empty()) std::printf("%s\n", t.note.c_str());
  }
  std::printf("\n");
}

// One result object per table row, keyed by the table's column names, with
// the simulation and table it came from: {"results":[{...}, ...]}.
void append_json(std::string& out, const std::string& name, const report& r) {
  for (const auto& t : r.tables) {
    for (const auto& row : t.rows) {
      out += out.back() == '[' ? "{" : ",{";
      // Appended piece by piece: `"," + std::string` trips GCC 12's -Wrestrict
      // false positive (GCC bug 105651) at -O3, and builds temporaries anyway.
      out += "\"simulation\":";
      out += json_string(name);
      out += ",\"table\":";
      out += json_string(t.title);
      for (std::size_t c = 0; c < t.columns.size() && c < row.size(); ++c) {
        out += ',';
        out += json_string(t.columns[c]);
        out += ':';
        out += json_cell(row[c]);
      }
      out += "}";
    }
  }
}

int usage() {
  std::printf("usage: keel_sim list | all | NAME... [--json] [--quick] [--seed N]\n");
  return 2;
}

}  // namespace
}  // namespace keel_sim

int main(int argc, char** argv) {
  using namespace keel_sim;
  options opt;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      opt.json = true;
    } else if (arg == "--quick") {
      opt.quick = true;
    } else if (arg == "--seed" && i + 1 < argc) {
      opt.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--help" || arg == "-h") {
      return usage();
    } else {
      names.push_back(arg);
    }
  }
  auto& all = registry();
  std::sort(all.begin(), all.end(), [](const entry& a, const entry& b) { return a.name < b.name; });
  if (names.empty()) return usage();
  if (names.size() == 1 && names[0] == "list") {
    for (const auto& e : all) std::printf("%-28s %s\n", e.name.c_str(), e.description.c_str());
    return 0;
  }
  std::vector<const entry*> chosen;
  if (names.size() == 1 && names[0] == "all") {
    for (const auto& e : all) chosen.push_back(&e);
  } else {
    for (const auto& n : names) {
      auto it = std::find_if(all.begin(), all.end(), [&](const entry& e) { return e.name == n; });
      if (it == all.end()) {
        std::fprintf(stderr, "keel_sim: no simulation named '%s' (try: keel_sim list)\n", n.c_str());
        return 2;
      }
      chosen.push_back(&*it);
    }
  }
  bool ok = true;
  std::string json = "{\"results\":[";
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    report r;
    if (!chosen[i]->run(opt, r)) {
      std::fprintf(stderr, "keel_sim: %s reported an inconsistency\n", chosen[i]->name.c_str());
      ok = false;
    }
    if (opt.json) {
      append_json(json, chosen[i]->name, r);
    } else {
      print_text(chosen[i]->name, r);
    }
  }
  if (opt.json) std::printf("%s]}\n", json.c_str());
  if (!opt.json) std::printf("%zu simulation(s) run\n", chosen.size());
  return ok ? 0 : 1;
}
