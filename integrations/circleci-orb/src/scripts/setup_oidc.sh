#!/bin/bash
# setup_oidc: install keyless if needed, then exchange the job's OIDC token
# for role credentials written to an AWS profile. Parameters arrive as
# KEYLESS_PARAM_* environment variables.
set -euo pipefail

# CircleCI passes parameters such as ${AWS_ROLE_ARN} through literally.
# Expand them as `circleci env subst` does (the aws-cli orb runs every
# parameter through it): each $NAME or ${NAME}, anywhere in the value, is
# replaced by that variable's value (empty when unset); every other "$" and
# all other text stay as written. Nothing is evaluated: no command
# substitution, no ${NAME:-...} operators.
expand_param() {
  # Locals are prefixed so that a parameter's $NAME never reads one of them.
  local LC_ALL=C __kl_in=$1 __kl_out="" __kl_rest __kl_name
  while [[ $__kl_in == *'$'* ]]; do
    __kl_out+=${__kl_in%%\$*}
    __kl_rest=${__kl_in#*\$}
    if [[ $__kl_rest =~ ^\{([A-Za-z_][A-Za-z0-9_]*)\}(.*)$ ]] || [[ $__kl_rest =~ ^([A-Za-z_][A-Za-z0-9_]*)(.*)$ ]]; then
      __kl_name=${BASH_REMATCH[1]}
      __kl_out+=${!__kl_name-}
      __kl_in=${BASH_REMATCH[2]}
    else
      __kl_out+='$'
      __kl_in=$__kl_rest
    fi
  done
  printf '%s' "$__kl_out$__kl_in"
}

ROLE_ARN=$(expand_param "${KEYLESS_PARAM_ROLE_ARN:-}")
PROFILE_NAME=$(expand_param "${KEYLESS_PARAM_PROFILE_NAME:-default}")
SESSION_NAME=$(expand_param "${KEYLESS_PARAM_ROLE_SESSION_NAME:-}")
DURATION=$(expand_param "${KEYLESS_PARAM_SESSION_DURATION:-}")
REGION=$(expand_param "${KEYLESS_PARAM_REGION:-}")
ENDPOINT_URL=$(expand_param "${KEYLESS_PARAM_ENDPOINT_URL:-}")
VERSION=$(expand_param "${KEYLESS_PARAM_VERSION:-}")
SHA256SUMS_SHA256=$(expand_param "${KEYLESS_PARAM_SHA256SUMS_SHA256:-}")
RELEASE_URL=$(expand_param "${KEYLESS_PARAM_RELEASE_URL:-}")
BINARY_URL=$(expand_param "${KEYLESS_PARAM_BINARY_URL:-}")
BINARY_SHA256=$(expand_param "${KEYLESS_PARAM_BINARY_SHA256:-}")

if [[ -z $ROLE_ARN ]]; then
  echo "setup_oidc: role_arn is empty: set the parameter or the AWS_ROLE_ARN environment variable" >&2
  exit 1
fi
if [[ -z ${CIRCLE_OIDC_TOKEN_V2:-}${CIRCLE_OIDC_TOKEN:-} ]]; then
  {
    echo "setup_oidc: this job has no OIDC token (CIRCLE_OIDC_TOKEN_V2 is not set)."
    echo "CircleCI gives one only to jobs that run with a context or with OIDC enabled:"
    echo "add a context to this job in the workflow (an empty context will do: jobs: [{deploy: {context: [aws]}}]);"
    echo "builds of forked pull requests get one only with \"Pass secrets to builds from forked pull requests\""
    echo "(Project settings > Advanced); CircleCI server needs version 4.4 or later. Then rerun the job."
  } >&2
  exit 1
fi

# Install keyless unless it is on PATH, with the shared installer
# (scripts/install_keyless.sh, handed over in KEYLESS_INSTALL_SCRIPT): the
# pinned release, its SHA-256 verified, else `go install`.
KEYLESS=$(command -v keyless || true)
if [[ -z $KEYLESS ]]; then
  BIN_DIR="$HOME/.local/bin"
  KEYLESS=$(KEYLESS_INSTALL_DIR="$BIN_DIR" KEYLESS_VERSION="$VERSION" KEYLESS_SHA256SUMS_SHA256="$SHA256SUMS_SHA256" \
    KEYLESS_RELEASE_URL="$RELEASE_URL" KEYLESS_BINARY_URL="$BINARY_URL" KEYLESS_BINARY_SHA256="$BINARY_SHA256" \
    sh -c "$KEYLESS_INSTALL_SCRIPT")
  echo "export PATH=\"$BIN_DIR:\$PATH\"" >> "$BASH_ENV"
fi

args=(assume --role-arn "$ROLE_ARN" --profile "$PROFILE_NAME")
[[ -n $SESSION_NAME ]] && args+=(--session-name "$SESSION_NAME")
[[ -n $DURATION ]] && args+=(--duration "$DURATION")
[[ -n $REGION ]] && args+=(--region "$REGION")
[[ -n $ENDPOINT_URL ]] && args+=(--endpoint-url "$ENDPOINT_URL")
case $(expand_param "${KEYLESS_PARAM_SET_AWS_ENV_VARS:-true}") in
  1 | true) args+=(--circleci-bash-env) ;;
esac

"$KEYLESS" "${args[@]}"
