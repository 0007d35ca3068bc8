# keyless broker aws-setup --output cli: what AWS account 222222222222 needs so that keyless
# brokers the keyless role arn:aws:iam::111111111111:role/ci-deploy
# to the AWS role arn:aws:iam::222222222222:role/ci-deploy.
# AWS trusts keyless's issuer http://127.0.0.1:8400/oidc for exactly the subject
# keyless:111111111111:role/ci-deploy (audience sts.amazonaws.com).
#
# WARNING: http://127.0.0.1:8400/oidc is a loopback test issuer. Real AWS refuses plain http
# and ports in provider URLs: this works only against a keyless serve run with
# --allow-loopback-http-issuers playing AWS.
#
# Run it with credentials of AWS account 222222222222 allowed to create IAM OIDC
# providers and roles (the AWS CLI's environment or profile), and with no
# AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_IAM pointing at keyless.
set -eu

# 1. keyless's issuer as an IAM OIDC provider. One provider per account serves
#    every keyless role: when the account has it, only the audience is added.
provider_arn=arn:aws:iam::222222222222:oidc-provider/127.0.0.1:8400/oidc
if aws iam get-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" >/dev/null 2>&1; then
  aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" \
    --client-id sts.amazonaws.com
else
  aws iam create-open-id-connect-provider --url http://127.0.0.1:8400/oidc \
    --client-id-list sts.amazonaws.com
fi

# 2. The AWS role keyless brokers to, trusting only the keyless role's subject.
cat > trust.json <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "KeylessBroker",
      "Effect": "Allow",
      "Principal": {
        "Federated": "arn:aws:iam::222222222222:oidc-provider/127.0.0.1:8400/oidc"
      },
      "Action": [
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
        "sts:SetSourceIdentity"
      ],
      "Condition": {
        "StringEquals": {
          "127.0.0.1:8400/oidc:aud": "sts.amazonaws.com",
          "127.0.0.1:8400/oidc:sub": "keyless:111111111111:role/ci-deploy"
        }
      }
    }
  ]
}
EOF
aws iam create-role --role-name ci-deploy --path / \
  --max-session-duration 43200 \
  --description 'Brokered by keyless for arn:aws:iam::111111111111:role/ci-deploy (subject keyless:111111111111:role/ci-deploy)' \
  --assume-role-policy-document file://trust.json

# 3. Link the keyless role to the AWS role, in keyless (with keyless
#    administrator credentials).
aws iam tag-role --endpoint-url http://127.0.0.1:8400 \
  --role-name ci-deploy \
  --tags '[{"Key":"keyless:upstream-role-arn","Value":"arn:aws:iam::222222222222:role/ci-deploy"}]'

# Then give the role what it may do in AWS, for example:
#   aws iam attach-role-policy --role-name ci-deploy --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess
