# keyless broker aws-setup --output cli: what AWS account 222222222222 needs so that keyless
# brokers the keyless role arn:aws:iam::111111111111:role/ci-deploy
# to the AWS role arn:aws:iam::222222222222:role/ci-deploy.
# AWS trusts keyless's issuer https://keyless.example.com/oidc for exactly the subject
# keyless:111111111111:role/ci-deploy (audience sts.amazonaws.com).
#
# Run it with credentials of AWS account 222222222222 allowed to create IAM OIDC
# providers and roles (the AWS CLI's environment or profile), and with no
# AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_IAM pointing at keyless.
set -eu

# 1. keyless's issuer as an IAM OIDC provider. One provider per account serves
#    every keyless role: when the account has it, only the audience is added.
provider_arn=arn:aws:iam::222222222222:oidc-provider/keyless.example.com/oidc
if aws iam get-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" >/dev/null 2>&1; then
  aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" \
    --client-id sts.amazonaws.com
else
  aws iam create-open-id-connect-provider --url https://keyless.example.com/oidc \
    --client-id-list sts.amazonaws.com \
    --thumbprint-list 0123456789abcdef0123456789abcdef01234567
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
        "Federated": "arn:aws:iam::222222222222:oidc-provider/keyless.example.com/oidc"
      },
      "Action": [
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
        "sts:SetSourceIdentity"
      ],
      "Condition": {
        "StringEquals": {
          "keyless.example.com/oidc:aud": "sts.amazonaws.com",
          "keyless.example.com/oidc:sub": "keyless:111111111111:role/ci-deploy"
        }
      }
    }
  ]
}
EOF
aws iam create-role --role-name ci-deploy --path / \
  --max-session-duration 3600 \
  --description 'Brokered by keyless for arn:aws:iam::111111111111:role/ci-deploy (subject keyless:111111111111:role/ci-deploy)' \
  --assume-role-policy-document file://trust.json

# Then give the role what it may do in AWS, for example:
#   aws iam attach-role-policy --role-name ci-deploy --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess
