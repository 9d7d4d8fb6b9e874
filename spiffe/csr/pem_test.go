package csr

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
)

func TestPEMRoundTrip(t *testing.T) {
	key := newKey(t)
	der, err := Create(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePEM(EncodePEM(der))
	if err != nil || !bytes.Equal(got, der) {
		t.Fatalf("DecodePEM(EncodePEM(der)) = %x, %v", got, err)
	}
	if _, err := Check(got, want); err != nil {
		t.Fatalf("Check rejects a CSR from Create: %v", err)
	}
}

func TestDecodePEMRejects(t *testing.T) {
	der := makeCSR(t, newKey(t), nil)
	good := EncodePEM(der)
	withHeader := pem.EncodeToMemory(&pem.Block{Type: pemType, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der})
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"DER instead of PEM", der, "no PEM block"},
		{"oversized", bytes.Repeat([]byte("a"), 2*MaxSize+1), "limit"},
		{"certificate block", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), "send a"},
		{"private key block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), "send a"},
		{"headers", withHeader, "headers"},
		{"two blocks", append(append([]byte{}, good...), good...), "continues"},
		{"text after", append(append([]byte{}, good...), "trailer"...), "continues"},
		{"text before", append([]byte("note\n"), good...), "before"},
		{"broken block before", append([]byte("-----BEGIN X-----\nzz\n"), good...), "before"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodePEM(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodePEM = %x, %v; want an error mentioning %q", got, err, tc.want)
			}
		})
	}
}

func FuzzDecodePEM(f *testing.F) {
	f.Add(EncodePEM(makeCSR(f, newKey(f), nil)))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, data []byte) {
		der, err := DecodePEM(data)
		if err != nil {
			return
		}
		if again, err := DecodePEM(EncodePEM(der)); err != nil || !bytes.Equal(again, der) {
			t.Fatalf("accepted block does not round-trip: %v", err)
		}
		_, _ = Check(der, want) // must not panic on whatever the block holds
	})
}
