package main

import (
	"encoding/json"
	"io"

	"github.com/keylessci/keyless/internal/lint"
)

// SARIF 2.1.0 output of `policy lint`, for GitHub code scanning: the
// rules that ran in tool.driver.rules, one result per finding.

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifText       `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties map[string]any  `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

type sarifLogical struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifLevel maps a severity to a SARIF level.
func sarifLevel(s lint.Severity) string {
	switch {
	case s >= lint.SeverityHigh:
		return "error"
	case s == lint.SeverityMedium:
		return "warning"
	}
	return "note"
}

// securitySeverity is GitHub's security-severity score of a severity
// (critical ≥ 9.0, high ≥ 7.0, medium ≥ 4.0, low below).
func securitySeverity(s lint.Severity) string {
	switch s {
	case lint.SeverityCritical:
		return "9.5"
	case lint.SeverityHigh:
		return "8.0"
	case lint.SeverityMedium:
		return "5.5"
	case lint.SeverityLow:
		return "3.0"
	}
	return "0.0"
}

func writeLintSARIF(w io.Writer, results []lintResult) error {
	rules := lint.Rules()
	driver := sarifDriver{Name: "keyless policy lint", InformationURI: "https://github.com/keylessci/keyless/blob/main/docs/trust-policies.md"}
	index := map[string]int{}
	for i, r := range rules {
		index[r.ID] = i
		driver.Rules = append(driver.Rules, sarifRule{
			ID: r.ID, Name: r.ID, ShortDescription: sarifText{r.Title},
			DefaultConfiguration: sarifConfig{sarifLevel(r.Severity)},
			Properties: map[string]any{"security-severity": securitySeverity(r.Severity), "severity": r.Severity.String(),
				"tags": []string{"security", "iam", "oidc"}},
		})
	}
	run := sarifRun{Tool: sarifTool{driver}, Results: []sarifResult{}}
	for _, r := range results {
		f := r.f
		uri := r.doc.uri
		if uri == "" {
			uri = r.doc.file
		}
		loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: uri}},
			LogicalLocations: []sarifLogical{{FullyQualifiedName: f.Path, Kind: "object"}}}
		if r.doc.direct && f.Line > 0 {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line, StartColumn: f.Column}
		}
		props := map[string]any{"severity": f.Severity.String(), "statement": f.Statement, "file": r.doc.file}
		if f.Probe != nil {
			props["probe"] = f.Probe.Claims
		}
		if f.Fix != "" {
			props["fix"] = f.Fix
		}
		msg := f.Message
		if f.Fix != "" {
			msg += " Suggested Condition: " + f.Fix
		}
		run.Results = append(run.Results, sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity),
			Message: sarifText{msg}, Locations: []sarifLocation{loc}, Properties: props})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}
