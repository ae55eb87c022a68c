// A fleet sharing one HSM has one rotation authority: a controller runs
// `sks rotate start|install-cert|publish|activate|retire|destroy` against
// its own state file, and every signing instance adopts a copy of that
// file as its own state (`sks rotate adopt --state FILE`), then reloads.
//
// adopt_state checks the copy before it replaces this instance's state:
// - it is a valid state file (kMalformed); profiles it names that this
//   config does not rotate are orphans: accepted, reported, never signed with;
// - it never goes back: every key this instance knows is in the copy, under
//   the same label, at the same or a later step of its lifecycle, and the
//   copy's generation and id counter are not lower (kInvalidArgument: an
//   older copy);
// - every active key is in this instance's token, and its x5u answers over
//   HTTPS with a chain whose leaf key is that token key and which is valid
//   now (kNotFound, kInvalidArgument): an instance never signs with a key
//   whose URL is not served yet.
// On any refusal the instance's state is unchanged. The copy is written
// as it is (its generation included, so every instance reports the
// controller's generation once it loaded it) (paths inside it are the controller's: only labels,
// x5u and states matter to a server), atomically, under the state file's lock. The same copy again
// is "unchanged". Nothing is reloaded: the caller sends SIGHUP (Ansible's handler, `systemctl
// reload`).
//
// Threads: blocks the caller (one HTTPS fetch per active key).
#pragma once

#include <string>
#include <vector>

#include "sks/config.h"
#include "sks/pkcs11/key_store.h"
#include "sks/rotation/manager.h"

namespace sks::rotation {

std::vector<Action> adopt_state(const Config& config, p11::KeyStore& keys, const std::string& path);

// The body served at `x5u` (https, our own repository: loopback and
// private addresses allowed); kInvalidArgument naming the URL when it does
// not answer 200. `ca_file` checks the repository's TLS certificate ("" =
// the system store).
std::string fetch_x5u(const std::string& x5u, const std::string& ca_file);

// Whether a key may go from `from` to `to` (the same state included).
bool moves_forward(KeyState from, KeyState to) noexcept;

}  // namespace sks::rotation
