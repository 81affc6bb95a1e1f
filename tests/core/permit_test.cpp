#include <keel/core/permit.hpp>

#include <catch.hpp>

#include <utility>

namespace {
// The smallest permit built the keel way: a counter of admitted, recorded and
// dropped calls, and a permit that links to it.
struct issuer {
  int in_flight = 0;
  int successes = 0;
  int dropped = 0;

  class ticket {
   public:
    explicit ticket(issuer* owner) : link_(owner) { ++owner->in_flight; }
    ticket(ticket&&) noexcept = default;
    ticket& operator=(ticket&& other) noexcept { return keel::detail::replace_permit(*this, std::move(other)); }
    ~ticket() { drop(); }

    bool active() const { return link_.active(); }
    void success() {
      if (issuer* o = link_.take()) {
        --o->in_flight;
        ++o->successes;
      }
    }

   private:
    void drop() noexcept {
      if (issuer* o = link_.take()) {
        --o->in_flight;
        ++o->dropped;
      }
    }
    keel::detail::permit_link<issuer> link_;
  };
};
}  // namespace

static_assert(keel::permit<issuer::ticket>);
static_assert(!keel::permit<int>);

TEST_CASE("a permit records once and a dropped permit releases", "[core][permit]") {
  issuer owner;
  {
    issuer::ticket t(&owner);
    CHECK(owner.in_flight == 1);
    t.success();
    t.success();  // a second record is ignored
    CHECK_FALSE(t.active());
  }
  CHECK(owner.successes == 1);
  CHECK(owner.dropped == 0);
  CHECK(owner.in_flight == 0);

  { issuer::ticket t(&owner); }
  CHECK(owner.dropped == 1);
  CHECK(owner.in_flight == 0);
}

TEST_CASE("moving a permit moves the admission, not a copy of it", "[core][permit]") {
  issuer owner;
  issuer::ticket a(&owner);
  issuer::ticket b(std::move(a));
  CHECK_FALSE(a.active());  // NOLINT(bugprone-use-after-move): moved-from is specified
  CHECK(b.active());
  a.success();  // a moved-from permit does nothing
  CHECK(owner.successes == 0);

  issuer::ticket c(&owner);
  CHECK(owner.in_flight == 2);
  c = std::move(b);  // c's own admission is dropped, b's moves in
  CHECK(owner.dropped == 1);
  CHECK(owner.in_flight == 1);
  c.success();
  CHECK(owner.successes == 1);
  CHECK(owner.in_flight == 0);
}

TEST_CASE("move-assigning a permit to itself keeps its admission", "[core][permit]") {
  issuer owner;
  issuer::ticket t(&owner);
  issuer::ticket& same = t;
  t = std::move(same);
  CHECK(t.active());
  CHECK(owner.in_flight == 1);
  CHECK(owner.dropped == 0);
  t.success();
  CHECK(owner.successes == 1);
}
