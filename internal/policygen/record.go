package policygen

import (
	"bytes"
	"runtime"
	"strings"
	"time"

	"github.com/buger/jsonparser"
)

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// The fields read from each event, in one pass over its top-level keys
// (values not needed are skipped by their structure, not scanned for keys).
// The indexes of workerState.v.
const (
	fTime = iota
	fType
	fSource
	fName
	fError
	fRegion
	fAccount
	fReadOnly
	fIDType
	fIDARN
	fIDKey
	fInvokedBy
	fIssuer
	fUserName
	fReq
	fResp
	fResources
	fAdditional // additionalEventData (the claims are read from it for exchanges only)
	nFields
)

// filter holds what every worker needs of the options, read-only.
type filter struct {
	start, end int64 // unix nanoseconds; 0 = open
	hasStart   bool
	hasEnd     bool
	roleARN    string // Options.Role as an ARN, or ""
	roleName   string // Options.Role as a name, or ""
	by         byMode
}

func newFilter(opts Options, by byMode) *filter {
	f := &filter{by: by}
	if !opts.Scan.Start.IsZero() {
		f.start, f.hasStart = opts.Scan.Start.UnixNano(), true
	}
	if !opts.Scan.End.IsZero() {
		f.end, f.hasEnd = opts.Scan.End.UnixNano(), true
	}
	if r := opts.Role; strings.HasPrefix(r, "arn:") {
		f.roleARN = r
	} else {
		f.roleName = r
	}
	return f
}

// wantRole reports whether a role ARN is the one asked for.
func (f *filter) wantRole(arn []byte) bool {
	switch {
	case f.roleARN != "":
		return string(arn) == f.roleARN
	case f.roleName != "":
		return roleName(string(arn)) == f.roleName
	}
	return true
}

// roleName returns the name of a role ARN (the path left out).
func roleName(arn string) string {
	i := strings.Index(arn, ":role/")
	if i < 0 {
		return ""
	}
	name := arn[i+len(":role/"):]
	if j := strings.LastIndexByte(name, '/'); j >= 0 {
		name = name[j+1:]
	}
	return name
}

// Call outcomes.
const (
	outOK uint8 = iota
	outFailed
	outDenied
)

// deniedCodes are the errorCodes of calls refused for lack of permission.
func isDenied(code []byte) bool {
	switch string(code) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
		"Client.UnauthorizedOperation", "UnauthorizedAccess", "AuthorizationError",
		"AuthorizationErrorException", "Forbidden", "403":
		return true
	}
	return false
}

// exchange is an event that created a role session: AssumeRoleWithWebIdentity
// (web) or AssumeRole made by another role session (role chaining).
type exchange struct {
	key     string // the new session's access key id
	sessARN string // the new session's ARN
	role    string
	at      int64
	web     bool
	// binding is the subject or the claim asked for (web exchanges);
	// hasBinding is false when the exchange does not record it.
	binding    string
	hasBinding bool
	// parentKey/parentARN identify the session that called AssumeRole.
	parentKey, parentARN string
}

// agg aggregates the calls of one session for one (action, resource).
type agg struct {
	outcome  uint8
	refKind  byte // 'k': ref is an access key id; 'a': ref is a session ARN
	ref      string
	role     string
	action   string
	resource string
	via      string
	cond     string // the kms:ViaService value of a forward access session's KMS call
	event    string // eventSource:eventName
	errCode  string // denied calls
	note     string // why resource is "*", if it is for want of an ARN

	count, readOnly, readKnown int64
	first, last                int64 // unix nanoseconds
}

// workerState is one scan worker's state: no locks, merged after the scan.
type workerState struct {
	f         *filter
	excluded  map[string]int64
	used      int64
	failed    int64
	denied    int64
	exchanges int64
	events    int64
	unknown   map[string]int64 // eventSource "\x00" eventName
	xs        []exchange
	acts      map[string]actionInfo
	strs      map[string]string

	// The aggregates: sessions and (action, resource, ...) tuples are
	// interned, so the per-call map has small fixed-size keys.
	sess     map[string]uint32
	sessList []sessDesc
	res      map[string]uint32
	resList  []resDesc
	codes    map[string]uint16
	codeList []string
	aggIdx   map[aggKey]uint32
	aggList  []aggVal

	// Scratch, reused per event.
	v       [nFields][]byte
	vt      [nFields]jsonparser.ValueType
	key     []byte
	derived []resource
	unesc   [nFields][]byte
	top     func(key, value []byte) bool
	ident   func(key, value []byte) bool
	sctx    func(key, value []byte) bool
}

func newWorkerState(f *filter) *workerState {
	s := &workerState{f: f, excluded: map[string]int64{}, unknown: map[string]int64{}, acts: map[string]actionInfo{}, strs: map[string]string{},
		sess: map[string]uint32{}, res: map[string]uint32{}, codes: map[string]uint16{"": 0}, codeList: []string{""},
		aggIdx: map[aggKey]uint32{}}
	set := func(i int, v []byte) { s.v[i], s.vt[i] = v, rjType(v) }
	s.top = func(key, v []byte) bool {
		switch string(key) {
		case "eventTime":
			set(fTime, v)
		case "eventType":
			set(fType, v)
		case "eventSource":
			set(fSource, v)
		case "eventName":
			set(fName, v)
		case "errorCode":
			set(fError, v)
		case "awsRegion":
			set(fRegion, v)
		case "recipientAccountId":
			set(fAccount, v)
		case "readOnly":
			set(fReadOnly, v)
		case "requestParameters":
			set(fReq, v)
		case "responseElements":
			set(fResp, v)
		case "resources":
			set(fResources, v)
		case "additionalEventData":
			set(fAdditional, v)
		case "userIdentity":
			rjEach(v, s.ident)
		}
		return true
	}
	s.ident = func(key, v []byte) bool {
		switch string(key) {
		case "type":
			set(fIDType, v)
		case "arn":
			set(fIDARN, v)
		case "accessKeyId":
			set(fIDKey, v)
		case "invokedBy":
			set(fInvokedBy, v)
		case "userName":
			set(fUserName, v)
		case "sessionContext":
			rjEach(v, s.sctx)
		}
		return true
	}
	s.sctx = func(key, v []byte) bool {
		if string(key) == "sessionIssuer" {
			if a := rjMember(v, "arn"); a != nil {
				set(fIssuer, a)
			}
			return false
		}
		return true
	}
	return s
}

// str returns field i as text (a JSON string unescaped, another scalar as
// written), or nil.
func (s *workerState) str(i int) []byte {
	v := s.v[i]
	switch s.vt[i] {
	case jsonparser.String:
		c, buf, ok := rjString(v, s.unesc[i])
		s.unesc[i] = buf
		if !ok {
			return nil
		}
		return c
	case jsonparser.Number, jsonparser.Boolean:
		return v
	}
	return nil
}

// raw returns field i's raw JSON when it is an object or array, else nil.
func (s *workerState) raw(i int) []byte {
	if s.vt[i] == jsonparser.Object || s.vt[i] == jsonparser.Array {
		return s.v[i]
	}
	return nil
}

// record processes one event.
func (s *workerState) record(data []byte) {
	s.events++
	for i := range s.v {
		s.v[i], s.vt[i] = nil, jsonparser.NotExist
	}
	rjEach(data, s.top)
	f := s.f

	at, okTime := parseEventTime(s.str(fTime))
	if (f.hasStart || f.hasEnd) && (!okTime || (f.hasStart && at < f.start) || (f.hasEnd && at >= f.end)) {
		s.excluded[ExcludedOutsideWindow]++
		return
	}
	switch et := s.str(fType); string(et) {
	case "AwsApiCall", "":
	case "AwsServiceEvent":
		s.excluded[ExcludedServiceEvent]++
		return
	case "AwsConsoleSignIn":
		s.excluded[ExcludedConsoleSignIn]++
		return
	case "AwsCloudTrailInsight":
		s.excluded[ExcludedInsight]++
		return
	default:
		s.excluded[ExcludedOtherEventType]++
		return
	}
	idType := s.str(fIDType)
	if string(idType) == "AWSService" {
		s.excluded[ExcludedServiceIdentity]++
		return
	}
	source, name := s.str(fSource), s.str(fName)
	if len(source) == 0 || len(name) == 0 {
		s.excluded[ExcludedMalformed]++
		return
	}
	errCode := s.str(fError)
	if string(name) == "AssumeRoleWithWebIdentity" && string(source) == "sts.amazonaws.com" {
		if len(errCode) > 0 {
			s.excluded[ExcludedFailedExchange]++
			return
		}
		s.webExchange(at)
		return
	}
	if string(idType) != "AssumedRole" {
		s.excluded[ExcludedOtherPrincipal]++
		return
	}
	sessARN := s.str(fIDARN)
	role := s.str(fIssuer)
	if len(role) == 0 {
		role = []byte(roleOfSession(string(sessARN)))
	}
	if len(role) == 0 {
		s.excluded[ExcludedOtherPrincipal]++
		return
	}
	idKey := s.str(fIDKey)
	if string(name) == "AssumeRole" && string(source) == "sts.amazonaws.com" && len(errCode) == 0 {
		// Role chaining: recorded whatever --role is, so that the called
		// role's sessions inherit the caller's binding.
		s.chainExchange(at, string(idKey), string(sessARN))
	}
	if bytes.Contains(role, []byte(":role/aws-service-role/")) {
		s.excluded[ExcludedServiceLinkedRole]++
		return
	}
	if !f.wantRole(role) {
		s.excluded[ExcludedOtherRole]++
		return
	}
	req := Params(s.raw(fReq))
	needs, known := Lookup(s.intern(source), s.intern(name), req)
	if !known {
		s.excluded[ExcludedUnknownAction]++
		k := make([]byte, 0, len(source)+1+len(name))
		k = append(append(append(k, source...), 0), name...)
		s.unknown[string(k)]++
		return
	}
	if len(needs) == 0 {
		s.excluded[ExcludedNoPermission]++
		return
	}

	out := outOK
	switch {
	case len(errCode) == 0:
		s.used++
	case isDenied(errCode):
		out = outDenied
		s.denied++
	default:
		out = outFailed
		s.failed++
	}
	via := s.str(fInvokedBy)
	refKind, ref := byte('k'), idKey
	var bucket int64
	if len(via) > 0 || len(idKey) == 0 {
		// Forward access sessions carry their own access key id: they are
		// linked by session ARN to the latest exchange before the call,
		// so their aggregates are kept per minute.
		refKind, ref, bucket = 'a', sessARN, at/int64(time.Minute)
	}
	readOnly := int8(-1)
	if s.vt[fReadOnly] == jsonparser.Boolean {
		readOnly = 0
		if string(s.v[fReadOnly]) == "true" {
			readOnly = 1
		}
	}

	c := callCtx{
		source: source, name: name, region: s.intern(s.str(fRegion)),
		account: s.intern(s.str(fAccount)), req: req,
		resp: s.raw(fResp), resources: s.raw(fResources),
	}
	if c.account == "" {
		c.account = arnField(string(sessARN), 4)
	}
	if c.region != "" {
		c.partition = partitionOf(c.region, "")
	} else {
		c.partition = partitionOf("", string(sessARN))
	}
	for _, n := range needs {
		ai := s.action(n.Action)
		s.derived = deriveResources(n, ai.info, ai.ok, &c, s.derived[:0])
		cond := ""
		if len(via) > 0 && strings.HasPrefix(n.Action, "kms:") && bytes.HasSuffix(via, []byte(".amazonaws.com")) {
			// The condition key AWS documents for KMS calls services make
			// for the caller: kms:ViaService = SERVICE.REGION.amazonaws.com.
			cond = string(via[:len(via)-len(".amazonaws.com")]) + "." + c.region + ".amazonaws.com"
		}
		for _, r := range s.derived {
			s.add(out, refKind, ref, bucket, role, n.Action, r, via, cond, source, name, errCode, at, readOnly)
		}
	}
}

// sessDesc is an interned session: its access key id ('k') or session ARN
// ('a'), and its role.
type sessDesc struct {
	refKind   byte
	ref, role string
}

// resDesc is an interned (action, resource, via, condition, event).
type resDesc struct {
	action, resource, via, cond, note, event string
}

type aggKey struct {
	sess, res uint32
	bucket    int64 // the minute, for sessions known by ARN
	out       uint8
	code      uint16 // errorCode of denied calls
}

type aggVal struct {
	key                        aggKey
	count, readOnly, readKnown int64
	first, last                int64
}

// add counts one call in its aggregate.
func (s *workerState) add(out uint8, refKind byte, ref []byte, bucket int64, role []byte, action string, r resource,
	via []byte, cond string, source, name, errCode []byte, at int64, readOnly int8) {
	// The session (the role is not in the key: a session is of one role).
	k := append(s.key[:0], refKind)
	k = append(k, ref...)
	sid, ok := s.sess[string(k)]
	if !ok {
		sid = uint32(len(s.sessList))
		s.sessList = append(s.sessList, sessDesc{refKind: refKind, ref: string(ref), role: string(role)})
		s.sess[string(k)] = sid
	}
	k = append(k[:0], action...)
	k = append(k, 0)
	k = append(k, r.arn...)
	k = append(k, 0)
	k = append(k, via...)
	k = append(k, 0)
	k = append(k, cond...)
	k = append(k, 0)
	k = append(k, source...)
	k = append(k, ':')
	k = append(k, name...)
	s.key = k
	rid, ok := s.res[string(k)]
	if !ok {
		rid = uint32(len(s.resList))
		s.resList = append(s.resList, resDesc{action: action, resource: r.arn, via: string(via), cond: cond, note: r.note,
			event: string(source) + ":" + string(name)})
		s.res[string(k)] = rid
	}
	ak := aggKey{sess: sid, res: rid, bucket: bucket, out: out}
	if out == outDenied {
		c, ok := s.codes[string(errCode)]
		if !ok {
			c = uint16(min(len(s.codeList), 1<<16-1))
			if int(c) == len(s.codeList) {
				s.codeList = append(s.codeList, string(errCode))
				s.codes[string(errCode)] = c
			}
		}
		ak.code = c
	}
	i, ok := s.aggIdx[ak]
	if !ok {
		i = uint32(len(s.aggList))
		s.aggList = append(s.aggList, aggVal{key: ak, first: at, last: at})
		s.aggIdx[ak] = i
	}
	a := &s.aggList[i]
	a.count++
	if readOnly >= 0 {
		a.readKnown++
		a.readOnly += int64(readOnly)
	}
	a.first = min(a.first, at)
	a.last = max(a.last, at)
}

// eachAgg calls fn with each aggregate of the worker as an agg.
func (s *workerState) eachAgg(fn func(a *agg)) {
	var a agg
	for i := range s.aggList {
		v := &s.aggList[i]
		sd, rd := &s.sessList[v.key.sess], &s.resList[v.key.res]
		a = agg{outcome: v.key.out, refKind: sd.refKind, ref: sd.ref, role: sd.role, action: rd.action, resource: rd.resource,
			via: rd.via, cond: rd.cond, event: rd.event, errCode: s.codeList[v.key.code], note: rd.note,
			count: v.count, readOnly: v.readOnly, readKnown: v.readKnown, first: v.first, last: v.last}
		fn(&a)
	}
}

// intern returns b as a string, allocating only the first time (for the
// few distinct values of eventSource, eventName, awsRegion, account).
func (s *workerState) intern(b []byte) string {
	if v, ok := s.strs[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(s.strs) < 1<<16 {
		s.strs[v] = v
	}
	return v
}

// actionInfo is a cached Action lookup.
type actionInfo struct {
	info ActionInfo
	ok   bool
}

// action is Action, cached per worker.
func (s *workerState) action(name string) actionInfo {
	if ai, ok := s.acts[name]; ok {
		return ai
	}
	info, ok := Action(name)
	ai := actionInfo{info, ok}
	s.acts[name] = ai
	return ai
}

// webExchange records an AssumeRoleWithWebIdentity that succeeded.
func (s *workerState) webExchange(at int64) {
	s.exchanges++
	resp := s.raw(fResp)
	x := exchange{at: at, web: true}
	x.key = getString(resp, "credentials", "accessKeyId")
	x.sessARN = getString(resp, "assumedRoleUser", "arn")
	x.role = getString(s.raw(fReq), "roleArn")
	if x.key == "" && x.sessARN == "" {
		return // nothing can be linked to it
	}
	var claims []byte
	if add := s.raw(fAdditional); add != nil {
		if v := rjMember(add, "webIdentityTokenClaims"); rjType(v) == jsonparser.Object {
			claims = v
		}
	}
	switch s.f.by.kind {
	case 's':
		x.binding = string(s.str(fUserName))
		if x.binding == "" {
			x.binding = getString(claims, "sub")
		}
		if x.binding == "" {
			x.binding = getString(resp, "subjectFromWebIdentityToken")
		}
		x.hasBinding = x.binding != ""
	case 'c':
		v, vt, _, err := jsonparser.Get(claims, s.f.by.claim)
		if err == nil {
			switch vt {
			case jsonparser.String:
				if u, err := jsonparser.ParseString(v); err == nil {
					x.binding, x.hasBinding = u, true
				}
			case jsonparser.Null, jsonparser.NotExist:
			default:
				x.binding, x.hasBinding = string(v), true
			}
		}
	}
	s.xs = append(s.xs, x)
}

// chainExchange records an AssumeRole made by a role session: the new
// session inherits the caller's binding.
func (s *workerState) chainExchange(at int64, parentKey, parentARN string) {
	resp := s.raw(fResp)
	x := exchange{at: at, parentKey: parentKey, parentARN: parentARN}
	x.key = getString(resp, "credentials", "accessKeyId")
	x.sessARN = getString(resp, "assumedRoleUser", "arn")
	x.role = getString(s.raw(fReq), "roleArn")
	if x.key == "" && x.sessARN == "" {
		return
	}
	s.xs = append(s.xs, x)
}

// getString returns the string at path in a raw JSON object, or "".
func getString(data []byte, path ...string) string {
	if len(data) == 0 {
		return ""
	}
	v, vt, _, err := jsonparser.Get(data, path...)
	if err != nil || vt != jsonparser.String {
		return ""
	}
	u, err := jsonparser.ParseString(v)
	if err != nil {
		return ""
	}
	return u
}

// roleOfSession returns the role ARN of an assumed-role session ARN (its
// path is not in the session ARN, so a role with a path gets it wrong:
// used only when the event has no sessionIssuer).
func roleOfSession(sess string) string {
	const m = ":assumed-role/"
	i := strings.Index(sess, m)
	if i < 0 || !strings.HasPrefix(sess, "arn:") {
		return ""
	}
	rest := sess[i+len(m):]
	j := strings.IndexByte(rest, '/')
	if j <= 0 {
		return ""
	}
	return "arn:" + arnField(sess, 1) + ":iam::" + arnField(sess, 4) + ":role/" + rest[:j]
}

// arnField returns the i-th colon-separated field of an ARN (1 partition,
// 2 service, 3 region, 4 account), or "".
func arnField(arn string, i int) string {
	for range i {
		j := strings.IndexByte(arn, ':')
		if j < 0 {
			return ""
		}
		arn = arn[j+1:]
	}
	if j := strings.IndexByte(arn, ':'); j >= 0 {
		return arn[:j]
	}
	return ""
}

// partitionOf returns the partition of a region, else of an ARN.
func partitionOf(region, arn string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case region == "" && arn != "":
		if p := arnField(arn, 1); p != "" {
			return p
		}
	}
	return "aws"
}

// parseEventTime parses eventTime: "2006-01-02T15:04:05Z" quickly, any
// RFC 3339 form otherwise.
func parseEventTime(b []byte) (int64, bool) {
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		n := func(i, w int) (int, bool) {
			v := 0
			for _, c := range b[i : i+w] {
				if c < '0' || c > '9' {
					return 0, false
				}
				v = v*10 + int(c-'0')
			}
			return v, true
		}
		y, ok1 := n(0, 4)
		mo, ok2 := n(5, 2)
		d, ok3 := n(8, 2)
		h, ok4 := n(11, 2)
		mi, ok5 := n(14, 2)
		se, ok6 := n(17, 2)
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && se < 61 {
			return time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC).UnixNano(), true
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}
