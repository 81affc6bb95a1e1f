// keel_sim — deterministic quality simulations.
//
// Each simulation registers itself under a name ("cache/hit_ratio",
// "limit/denial_of_wallet", ...) and fills a report of tables. The same
// report prints as aligned text or, with --json, as one JSON document
// {"results":[...]} with one object per table row (keys: "simulation",
// "table", then the table's column names), so figures in docs come from
// exactly what a machine can re-read.
//
//   static const keel_sim::registration reg{"queue/burst", "what it shows", [](const keel_sim::options& o,
//                                                                              keel_sim::report& out) { ... }};
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace keel_sim {

struct options {
  bool json = false;
  bool quick = false;       ///< a shorter run, for CTest smoke runs
  std::uint64_t seed = 42;  ///< every random stream derives from it
};

/// A table cell: text, a number, a count, or a yes/no (JSON true/false).
using cell = std::variant<std::string, double, std::int64_t, bool>;

struct table {
  std::string title;
  std::vector<std::string> columns;
  std::vector<std::vector<cell>> rows;
  std::string note;  ///< one line printed under the table: what to read from it

  table& row(std::vector<cell> r) {
    rows.push_back(std::move(r));
    return *this;
  }
};

struct report {
  std::vector<table> tables;
  table& add(std::string title, std::vector<std::string> columns) {
    tables.push_back(table{std::move(title), std::move(columns), {}, {}});
    return tables.back();
  }
};

/// A simulation: fills `out`; returns false if it detected an inconsistency.
using simulation = std::function<bool(const options&, report& out)>;

struct entry {
  std::string name;
  std::string description;
  simulation run;
};

std::vector<entry>& registry();

struct registration {
  registration(std::string name, std::string description, simulation run) {
    registry().push_back(entry{std::move(name), std::move(description), std::move(run)});
  }
};

}  // namespace keel_sim
