// Package nft keeps tunneld's nftables table (inet tunneld) over
// nfnetlink with github.com/google/nftables: it translates model rules into
// the expressions nft itself would generate, replaces the whole table in
// one atomic batch, reads it back as canonical text and reads the rules'
// counters. Every rule carries its model tag as an nft comment, so
// `nft list ruleset` shows what tunneld meant. Nothing here touches any
// other table.
package nft
