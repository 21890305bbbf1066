package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// step turns the JSON of a version-N checkpoint into the JSON of a version-N+1 one (its "version" field
// included). It decodes version N with that version's own frozen types, never with the current ones.
type step func(data []byte) ([]byte, error)

// upgrade holds the chain of steps: upgrade[N] goes from version N to N+1 (a version N+1 adds upgrade[N] and bumps
// Version, and every older file still loads through it).
var upgrade = map[int]step{1: upgradeV1}

// Decode reads a checkpoint of any version it knows, brings it to the current Version through the upgrade chain
// and validates it. It refuses, with an error saying what it found and what it expected: data that is not one
// complete JSON object (empty, truncated, trailing bytes), a missing version, a version older than 1 or newer than
// Version, fields this version does not have, and anything Validate refuses. It never guesses a missing value.
func Decode(data []byte) (*File, error) {
	v, err := version(data)
	if err != nil {
		return nil, err
	}
	if data, err = migrate(data, v, Version, upgrade); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("version %d checkpoint: %w", Version, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the checkpoint's JSON object")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// version reads the "version" field alone, so the rest can be decoded by the types of that version.
func version(data []byte) (int, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return 0, errors.New("empty file, expected a JSON object (a checkpoint is never empty: a crash while writing it leaves the old one)")
	}
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return 0, fmt.Errorf("not valid JSON (corrupt or truncated) at byte %d: %w", syn.Offset, err)
		}
		return 0, fmt.Errorf("not a checkpoint, expected a JSON object: %w", err)
	}
	if len(head.Version) == 0 || string(head.Version) == "null" {
		return 0, fmt.Errorf("no version field, expected one (this weft reads %s)", supported())
	}
	var v int
	if err := json.Unmarshal(head.Version, &v); err != nil {
		return 0, fmt.Errorf("version %s, expected a whole number (this weft reads %s)", head.Version, supported())
	}
	switch {
	case v > Version:
		return 0, fmt.Errorf("version %d, newer than this weft reads (%s): a newer weft wrote it; run that one, or a weft that reads version %d", v, supported(), v)
	case v < 1:
		return 0, fmt.Errorf("version %d, unknown (this weft reads %s)", v, supported())
	}
	return v, nil
}

func supported() string {
	if Version == 1 {
		return "version 1"
	}
	return fmt.Sprintf("versions 1 to %d", Version)
}

// migrate runs the steps from version from to version to.
func migrate(data []byte, from, to int, steps map[int]step) ([]byte, error) {
	for v := from; v < to; v++ {
		s := steps[v]
		if s == nil {
			return nil, fmt.Errorf("version %d: no upgrade to version %d (this weft reads %s)", v, v+1, supported())
		}
		var err error
		if data, err = s(data); err != nil {
			return nil, fmt.Errorf("upgrade from version %d to %d: %w", v, v+1, err)
		}
	}
	return data, nil
}

// encode renders f as the current Version, indented for the operator who reads it, records as an array even
// when there are none.
func encode(f *File) ([]byte, error) {
	c := *f
	c.Version = Version
	if c.Records == nil {
		c.Records = []Record{}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return append(b, '\n'), nil
}
