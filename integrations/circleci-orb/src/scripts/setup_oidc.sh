#!/bin/bash
# setup_oidc: install keyless if needed, then exchange the job's OIDC token
# for role credentials written to an AWS profile. Parameters arrive as
# KEYLESS_PARAM_* environment variables.
set -euo pipefail

# CircleCI passes parameter defaults such as ${AWS_ROLE_ARN} through
# literally. Expand a value that is exactly $NAME or ${NAME}; anything else
# is used as written (no eval of arbitrary text).
expand_param() {
  local v=$1 name=""
  case $v in
    '${'*'}') name=${v#'${'}; name=${name%'}'} ;;
    '$'*) name=${v#'$'} ;;
  esac
  if [[ -n $name && $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    printf '%s' "${!name-}"
  else
    printf '%s' "$v"
  fi
}

ROLE_ARN=$(expand_param "${KEYLESS_PARAM_ROLE_ARN:-}")
PROFILE_NAME=$(expand_param "${KEYLESS_PARAM_PROFILE_NAME:-default}")
SESSION_NAME=$(expand_param "${KEYLESS_PARAM_ROLE_SESSION_NAME:-}")
DURATION=$(expand_param "${KEYLESS_PARAM_SESSION_DURATION:-}")
REGION=$(expand_param "${KEYLESS_PARAM_REGION:-}")
ENDPOINT_URL=$(expand_param "${KEYLESS_PARAM_ENDPOINT_URL:-}")
VERSION=$(expand_param "${KEYLESS_PARAM_VERSION:-latest}")
BINARY_URL=$(expand_param "${KEYLESS_PARAM_BINARY_URL:-}")
BINARY_SHA256=$(expand_param "${KEYLESS_PARAM_BINARY_SHA256:-}")

if [[ -z $ROLE_ARN ]]; then
  echo "setup_oidc: role_arn is empty: set the parameter or the AWS_ROLE_ARN environment variable" >&2
  exit 1
fi
if [[ -z ${CIRCLE_OIDC_TOKEN_V2:-}${CIRCLE_OIDC_TOKEN:-} ]]; then
  echo "setup_oidc: CircleCI gave this job no OIDC token (CIRCLE_OIDC_TOKEN_V2 and CIRCLE_OIDC_TOKEN are unset)" >&2
  exit 1
fi

KEYLESS=$(command -v keyless || true)
if [[ -z $KEYLESS ]]; then
  BIN_DIR="$HOME/.local/bin"
  mkdir -p "$BIN_DIR"
  if [[ -n $BINARY_URL ]]; then
    curl -fsSL --retry 3 -o "$BIN_DIR/keyless" "$BINARY_URL"
    if [[ -n $BINARY_SHA256 ]]; then
      echo "$BINARY_SHA256  $BIN_DIR/keyless" | sha256sum -c -
    fi
    chmod 0755 "$BIN_DIR/keyless"
  elif command -v go >/dev/null; then
    GOBIN="$BIN_DIR" go install "github.com/keylessci/keyless/cmd/keyless@${VERSION}"
  else
    echo "setup_oidc: keyless is not installed and neither binary_url nor Go is available" >&2
    exit 1
  fi
  echo "export PATH=\"$BIN_DIR:\$PATH\"" >> "$BASH_ENV"
  KEYLESS="$BIN_DIR/keyless"
fi

args=(assume --role-arn "$ROLE_ARN" --profile "$PROFILE_NAME")
[[ -n $SESSION_NAME ]] && args+=(--session-name "$SESSION_NAME")
[[ -n $DURATION ]] && args+=(--duration "$DURATION")
[[ -n $REGION ]] && args+=(--region "$REGION")
[[ -n $ENDPOINT_URL ]] && args+=(--endpoint-url "$ENDPOINT_URL")
case ${KEYLESS_PARAM_SET_AWS_ENV_VARS:-false} in
  1 | true) args+=(--circleci-bash-env) ;;
esac

"$KEYLESS" "${args[@]}"
