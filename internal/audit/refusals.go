package audit

import (
	"fmt"
	"time"
)

// Refusal reports: when requests refused before authentication are not
// recorded one by one (their source was throttled, or the trail's disk use
// passed its shed threshold), the server reports their number per source
// and period in one event, so the trail still shows a flood, at a bounded
// cost.
const (
	// SourceKeyless is the eventSource of events keyless writes about
	// itself rather than about one API call.
	SourceKeyless = "keyless"
	// EventNameRefusalReport is the eventName of a [RefusalReport] event.
	EventNameRefusalReport = "RefusedRequestsReport"
	// EventTypeServiceEvent is CloudTrail's eventType of events a service
	// generates itself.
	EventTypeServiceEvent = "AwsServiceEvent"
)

// RefusalReport is the content of one refusal report event.
type RefusalReport struct {
	Start, End time.Time // the period
	// SourceIP is the source's address (for an IPv6 network, its first
	// address); empty when the report sums several sources.
	SourceIP string
	// SourcePrefix is the network the source stands for
	// ("203.0.113.7/32", "2001:db8:1:2::/64"); empty when several.
	SourcePrefix string
	// Sources is how many sources the report sums (1 for one source).
	Sources int
	// Throttled counts the requests answered Throttling.
	Throttled uint64
	// Unrecorded counts refusals not recorded individually because the
	// trail's disk use was above its shed threshold.
	Unrecorded uint64
}

// RefusalReport builds the AwsServiceEvent of a refusal report:
// eventSource "keyless", eventName "RefusedRequestsReport", the counts in
// serviceEventDetails.
func (b *Builder) RefusalReport(r RefusalReport) (*Event, error) {
	if r.End.IsZero() || r.End.Before(r.Start) {
		return nil, fmt.Errorf("%w: refusal report period %s–%s", ErrInvalidEvent, r.Start, r.End)
	}
	id, err := NewEventID(b.Rand)
	if err != nil {
		return nil, err
	}
	details := map[string]any{
		"periodStart":        r.Start.UTC().Format(time.RFC3339),
		"periodEnd":          r.End.UTC().Format(time.RFC3339),
		"throttledRequests":  r.Throttled,
		"unrecordedRefusals": r.Unrecorded,
		"sources":            r.Sources,
	}
	if r.SourcePrefix != "" {
		details["sourcePrefix"] = r.SourcePrefix
	}
	return &Event{
		EventVersion:        EventVersion,
		UserIdentity:        &UserIdentity{Type: "AWSService", InvokedBy: SourceKeyless},
		EventTime:           r.End.UTC().Truncate(time.Second),
		EventSource:         SourceKeyless,
		EventName:           EventNameRefusalReport,
		AWSRegion:           b.Region,
		SourceIPAddress:     TruncateText(r.SourceIP, MinTruncateBytes),
		EventID:             id,
		ReadOnly:            true,
		EventType:           EventTypeServiceEvent,
		ManagementEvent:     true,
		RecipientAccountID:  b.AccountID,
		EventCategory:       EventCategoryManagement,
		ServiceEventDetails: details,
	}, nil
}
