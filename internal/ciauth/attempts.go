package ciauth

import "strconv"

// maxAttemptsLimit bounds AWS_MAX_ATTEMPTS (the backoff caps each wait,
// not their number).
const maxAttemptsLimit = 20

// backoffFromEnv applies AWS_MAX_ATTEMPTS, the total number of attempts as
// the AWS CLI and SDKs read it, unless the policy sets its own.
func backoffFromEnv(b Backoff, env Env) (Backoff, error) {
	v := env.Get("AWS_MAX_ATTEMPTS")
	if v == "" || b.MaxAttempts != 0 {
		return b, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxAttemptsLimit {
		return b, usageErr("AWS_MAX_ATTEMPTS=%q: want a whole number from 1 to %d (total attempts)", v, maxAttemptsLimit)
	}
	b.MaxAttempts = n
	return b, nil
}
