"""Perl's Mail::DKIM as a second DKIM verifier (not dkimpy), with the test's key records.

Mail::DKIM asks Mail::DKIM::DNS, which asks whatever resolver it is given: this one
knows the test's key records and nothing else, so no DNS is involved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

PERL = shutil.which("perl") or "/usr/bin/perl"

VERIFY_PL = r"""
use strict;
use warnings;
use JSON::PP;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS;

package LocalKeys {
    sub new { my ($class, $records) = @_; return bless { records => $records }, $class }
    sub errorstring { return 'NOERROR' }
    sub send {
        my ($self, $name, $type) = @_;
        my $packet = Net::DNS::Packet->new($name, $type, 'IN');
        $packet->header->qr(1);
        my $record = $self->{records}{lc $name};
        if (defined $record && uc $type eq 'TXT') {
            my @strings = unpack '(A255)*', $record;
            $packet->push(answer => Net::DNS::RR->new(
                name => $name, type => 'TXT', ttl => 60, txtdata => \@strings));
        } else {
            $packet->header->rcode('NXDOMAIN');
        }
        return $packet;
    }
}

package main;
Mail::DKIM::DNS::resolver(LocalKeys->new(decode_json($ENV{DKIM_TEST_RECORDS})));
my @results;
for my $file (@ARGV) {
    open my $fh, '<:raw', $file or die "$file: $!";
    my $verifier = Mail::DKIM::Verifier->new();
    $verifier->load($fh);
    close $fh;
    push @results, {
        file => $file,
        result => $verifier->result,
        signatures => [ map { {
            result => $_->result, detail => $_->result_detail, d => $_->domain,
            s => $_->selector, c => scalar $_->get_tag('c'), h => scalar $_->get_tag('h'),
        } } $verifier->signatures ],
    };
}
print encode_json(\@results);
"""



def missing() -> str | None:
    """Why Mail::DKIM cannot verify here, or None."""
    if os.access(PERL, os.X_OK):
        modules = ["-MMail::DKIM::Verifier", "-MNet::DNS", "-MJSON::PP"]
        probe = subprocess.run(
            [PERL, *modules, "-e", "1"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return None
    return "needs Perl's Mail::DKIM and Net::DNS (Debian: apt-get install libmail-dkim-perl)"




def verify(files: list[Path], records: dict[str, str]) -> list[dict[str, Any]]:
    """Each file's verdict: {file, result, signatures: [{result, detail, d, s, c, h}]}."""
    result = subprocess.run(
        [PERL, "-e", VERIFY_PL, *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, "DKIM_TEST_RECORDS": json.dumps(records)},
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"Mail::DKIM failed: {result.stderr}")
    verdicts: list[dict[str, Any]] = json.loads(result.stdout)
    return verdicts
