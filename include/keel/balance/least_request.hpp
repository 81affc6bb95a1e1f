// keel/balance/least_request.hpp — power of two choices on outstanding calls, weight-aware.
//
// Sample two usable nodes at random and send the call to the one with the
// higher weight / (outstanding + 1)^bias: Envoy's least_request balancer
// (Mitzenmacher's "power of two choices" with Envoy's weighting for unequal
// hosts). With equal weights that is simply the less busy of the two. bias 1
// (Envoy's active_request_bias default) weighs load and capacity equally;
// bias 0 ignores load (weighted random). Nothing is locked: the outstanding
// counts are the lease counters.
//
//   keel::balancer<gpu, keel::p2c_least_request> lb;
//   keel::p2c_least_request::config c; c.choices = 3;    // best of three
//   keel::balancer<gpu, keel::p2c_least_request> lb3({}, keel::p2c_least_request(c));
#pragma once

#include <keel/balance/detail/sampling.hpp>
#include <keel/core/detail/fatal.hpp>

#include <cmath>
#include <cstddef>

namespace keel {

class p2c_least_request {
 public:
  struct config {
    std::size_t choices = 2;           ///< candidates per pick (Envoy choice_count)
    double active_request_bias = 1.0;  ///< exponent of (outstanding + 1)

    void validate() const {
      detail::require_config(choices >= 1, "keel::p2c_least_request: choices must be at least 1");
      detail::require_config(std::isfinite(active_request_bias) && active_request_bias >= 0,
                             "keel::p2c_least_request: active_request_bias must be finite and not negative");
    }
  };
  struct node_state {};
  struct table {
    template <class View>
    table(const p2c_least_request&, const View&) noexcept {}
  };

  p2c_least_request() = default;
  explicit p2c_least_request(const config& c) : config_(c) { c.validate(); }

  template <class View>
  std::size_t pick(table&, const View& v) const {
    return detail::best_of_random(v, config_.choices, [this](const View& w, std::size_t i) {
      const double load = static_cast<double>(w.outstanding(i)) + 1.0;
      const double bias = config_.active_request_bias;
      const double denominator = bias == 1.0 ? load : bias == 0.0 ? 1.0 : std::pow(load, bias);
      return denominator * w.inverse_weight(i);  // lowest cost = highest weight / load^bias
    });
  }

 private:
  config config_{};
};

}  // namespace keel
