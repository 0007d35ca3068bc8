package policygen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// realTrail is the Invictus dataset's 2,900 real CloudTrail events (55
// delivery files), copied into the audit package's testdata.
const realTrail = "../audit/testdata/real/invictus"

func realPath(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(realTrail); err != nil {
		t.Skipf("real trail: %v", err)
	}
	return realTrail
}

// TestRealExclusionsCountedIndependently decodes the real files with
// encoding/json and counts each exclusion rule by itself.
func TestRealExclusionsCountedIndependently(t *testing.T) {
	dir := realPath(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	type rec struct {
		EventType    string `json:"eventType"`
		EventSource  string `json:"eventSource"`
		EventName    string `json:"eventName"`
		ErrorCode    string `json:"errorCode"`
		UserIdentity struct {
			Type           string `json:"type"`
			SessionContext struct {
				SessionIssuer struct {
					ARN string `json:"arn"`
				} `json:"sessionIssuer"`
			} `json:"sessionContext"`
		} `json:"userIdentity"`
		RequestParameters json.RawMessage `json:"requestParameters"`
	}
	want := map[string]int64{}
	var events, used, failed, denied int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Records []rec }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, r := range doc.Records {
			events++
			switch {
			case r.EventType == "AwsServiceEvent":
				want[ExcludedServiceEvent]++
			case r.EventType == "AwsConsoleSignIn":
				want[ExcludedConsoleSignIn]++
			case r.EventType != "AwsApiCall":
				want[ExcludedOtherEventType]++
			case r.UserIdentity.Type == "AWSService":
				want[ExcludedServiceIdentity]++
			case r.UserIdentity.Type != "AssumedRole":
				want[ExcludedOtherPrincipal]++ // no AssumeRoleWithWebIdentity in this data
			case strings.Contains(r.UserIdentity.SessionContext.SessionIssuer.ARN, ":role/aws-service-role/"):
				want[ExcludedServiceLinkedRole]++
			default:
				var p Params
				if len(r.RequestParameters) > 0 && r.RequestParameters[0] == '{' {
					p = Params(r.RequestParameters)
				}
				needs, known := Lookup(r.EventSource, r.EventName, p)
				switch {
				case !known:
					want[ExcludedUnknownAction]++
				case len(needs) == 0:
					want[ExcludedNoPermission]++
				case r.ErrorCode == "":
					used++
				case r.ErrorCode == "AccessDenied" || r.ErrorCode == "Client.UnauthorizedOperation":
					denied++
				default:
					failed++
				}
			}
		}
	}
	if events != 2900 {
		t.Fatalf("decoded %d events, want the dataset's 2900", events)
	}
	rep := generate(t, []string{dir}, Options{})
	if diff := cmp.Diff(want, rep.Excluded); diff != "" {
		t.Errorf("excluded (-independent +generated):\n%s", diff)
	}
	st := rep.Stats
	if st.Events != events || st.Used != used || st.Failed != failed || st.Denied != denied || st.Exchanges != 0 {
		t.Errorf("stats %+v, want events %d used %d failed %d denied %d", st, events, used, failed, denied)
	}
	// Fixed points of the data, counted by hand with jq.
	for k, n := range map[string]int64{ExcludedServiceEvent: 42, ExcludedConsoleSignIn: 3, ExcludedServiceIdentity: 34,
		ExcludedOtherPrincipal: 2745, ExcludedServiceLinkedRole: 6} {
		if rep.Excluded[k] != n {
			t.Errorf("excluded[%s] = %d, want %d", k, rep.Excluded[k], n)
		}
	}
}

// TestRealPerRolePolicies checks the policies of the real data's roles
// against expectations worked out by hand from the events.
func TestRealPerRolePolicies(t *testing.T) {
	rep := generate(t, []string{realPath(t)}, Options{})
	const acct = "arn:aws:iam::123837392027:role/"
	steal := findPolicy(t, rep, acct+"stratus-red-team-ec2-steal-credentials-role", nil)
	inst := "arn:aws:ec2:us-east-1:123837392027:instance/i-0dbc91f429e48eeed"
	want := map[string][]string{
		// DescribeInstances has no resource-level permission.
		"ec2:DescribeInstances": {"*"},
		// The SSM agent of instance i-0dbc91f429e48eeed, with the role's
		// instance-profile credentials.
		"ssm:GetDocument":                     {"arn:aws:ssm:us-east-1::document/AWS-GatherSoftwareInventory"},
		"ssm:ListInstanceAssociations":        {inst},
		"ssm:PutComplianceItems":              {inst},
		"ssm:UpdateInstanceAssociationStatus": {inst},
		"ssm:UpdateInstanceInformation":       {inst},
		"ssm:PutInventory":                    {"*"},
	}
	got := map[string][]string{}
	for _, a := range steal.Actions {
		got[a.Action] = a.Resources
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steal-credentials role (-want +got):\n%s", diff)
	}

	// RunInstances failed (Client.VcpuLimitExceeded) but was authorized:
	// granted, counted as failed.
	lui := findPolicy(t, rep, acct+"stratus-red-team-ec2lui-role-pcccexdthk", nil)
	if len(lui.Actions) != 1 || lui.Actions[0].Action != "ec2:RunInstances" || lui.Actions[0].Failed != 1 || lui.Actions[0].Count != 0 {
		t.Errorf("ec2lui role actions = %+v", lui.Actions)
	}
	// Only denied calls: no policy, listed as denied.
	for _, p := range rep.Policies {
		if strings.Contains(p.Role, "get-password-data") || strings.Contains(p.Role, "leave-org") {
			t.Errorf("policy for a role whose calls were all denied: %s", p.Role)
		}
		if strings.Contains(p.Role, "aws-service-role") {
			t.Errorf("policy for a service-linked role: %s", p.Role)
		}
	}
	// Denied per instance (each call named another one): summed here.
	sum := map[string]int64{}
	for _, d := range rep.Denied {
		if d.Action != "organizations:LeaveOrganization" && !strings.Contains(d.Resource, ":instance/i-") {
			t.Errorf("denied %s on %s, want an instance ARN", d.Action, d.Resource)
		}
		sum[roleName(d.Role)+" "+d.Action+" "+d.ErrorCode] += d.Count
	}
	var den []string
	for k, n := range sum {
		den = append(den, k+" "+strconv.FormatInt(n, 10))
	}
	slices.Sort(den)
	if diff := cmp.Diff([]string{
		"stratus-red-team-ec2-get-password-data-role ec2:GetPasswordData Client.UnauthorizedOperation 29",
		"stratus-red-team-get-usr-data-role ec2:DescribeInstanceAttribute Client.UnauthorizedOperation 15",
		"stratus-red-team-leave-org-role organizations:LeaveOrganization AccessDenied 1",
	}, den); diff != "" {
		t.Errorf("denied (-want +got):\n%s", diff)
	}
	// Every role's sessions were created by AssumeRole from an IAM user or
	// by EC2: none is linked to a web identity exchange.
	if rep.Stats.SessionsLinked != 0 || rep.Stats.SessionsUnlinked == 0 {
		t.Errorf("sessions: %+v", rep.Stats)
	}
	checkAllowsInputsDeniesNeighbours(t, rep)

	// 29 instances: more than CollapseAfter, so the neighbours are
	// checked without collapsing (collapsing is tested apart).
	withDenied := generate(t, []string{realPath(t)}, Options{IncludeDenied: true, CollapseAfter: 100})
	pw := findPolicy(t, withDenied, acct+"stratus-red-team-ec2-get-password-data-role", nil)
	if !slices.ContainsFunc(pw.Actions, func(a ActionUse) bool { return a.Action == "ec2:GetPasswordData" && a.Denied == 29 }) {
		t.Errorf("with IncludeDenied: %+v", pw.Actions)
	}
	checkAllowsInputsDeniesNeighbours(t, withDenied)
}
