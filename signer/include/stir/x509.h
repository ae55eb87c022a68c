// X.509 certificates as STIR/SHAKEN uses them: PEM chains (end-entity first,
// then each issuer), the links between them, and the TNAuthList extension.
//
// Threads: no shared state; safe to call concurrently.
// Errors: stir::Error: kMalformed for text that is not a PEM certificate
// chain, kInvalidArgument for a chain that parses but breaks a rule (the
// message names the certificate by position, 0 = end-entity).
#pragma once

#include <openssl/x509.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stir/openssl.h"

namespace stir {

// Every certificate in a PEM text, in order. Throws kMalformed when the text
// holds no certificate, anything other than CERTIFICATE blocks (a private
// key, say), or a block that does not parse.
std::vector<X509Ptr> parse_pem_chain(std::string_view pem);

// The chain's links: at least one certificate; each certificate is issued by
// the next one (names match and the signature verifies with the next one's
// key). Says nothing about trust anchors or validity dates. Throws
// kInvalidArgument naming the first broken link.
void check_chain_links(const std::vector<X509Ptr>& chain);

// PEM text of the certificates, in order.
std::string chain_to_pem(const std::vector<X509Ptr>& chain);

// An ASN1_TIME as ISO 8601 UTC ("2026-11-26T18:04:00Z"); "?" if it does not parse.
std::string iso_time(const ASN1_TIME* time);

// Whether two keys are the same public key.
bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b);

// The SPC in a certificate's TNAuthList (RFC 8226, OID 1.3.6.1.5.5.7.1.26):
// nullopt when the extension is absent or holds no SPC. Throws kMalformed
// when the extension does not parse.
std::optional<std::string> tn_auth_list_spc(const X509* certificate);

// DER of a TNAuthList holding exactly one SPC: SEQUENCE { [0] EXPLICIT
// IA5String }. Throws kInvalidArgument unless the SPC is 1-16 characters of
// digits and uppercase letters.
std::vector<std::uint8_t> tn_auth_list_der(std::string_view spc);

}  // namespace stir
