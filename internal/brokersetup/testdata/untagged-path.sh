# keyless broker aws-setup --output cli: what AWS account 222222222222 needs so that keyless
# brokers the keyless role arn:aws:iam::111111111111:role/teams/web.deploy@prod
# to the AWS role arn:aws:iam::222222222222:role/brokered/web.deploy@prod.
# AWS trusts keyless's issuer https://oidc.example.com/ci for exactly the subject
# keyless:111111111111:role/web.deploy@prod (audience sts.amazonaws.com).
#
# NOTE: this machine's trust store does not vouch for the certificate chain of keys.example.com:
# AWS may then rely on its thumbprint fedcba9876543210fedcba9876543210fedcba98; check it out of band.
#
# Run it with credentials of AWS account 222222222222 allowed to create IAM OIDC
# providers and roles (the AWS CLI's environment or profile), and with no
# AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_IAM pointing at keyless.
set -eu

# 1. keyless's issuer as an IAM OIDC provider. One provider per account serves
#    every keyless role: when the account has it, only the audience is added.
provider_arn=arn:aws:iam::222222222222:oidc-provider/oidc.example.com/ci
if aws iam get-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" >/dev/null 2>&1; then
  aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" \
    --client-id sts.amazonaws.com
else
  aws iam create-open-id-connect-provider --url https://oidc.example.com/ci \
    --client-id-list sts.amazonaws.com \
    --thumbprint-list fedcba9876543210fedcba9876543210fedcba98 0123456789abcdef0123456789abcdef01234567
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
        "Federated": "arn:aws:iam::222222222222:oidc-provider/oidc.example.com/ci"
      },
      "Action": [
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
        "sts:SetSourceIdentity"
      ],
      "Condition": {
        "StringEquals": {
          "oidc.example.com/ci:aud": "sts.amazonaws.com",
          "oidc.example.com/ci:sub": "keyless:111111111111:role/web.deploy@prod"
        }
      }
    }
  ]
}
EOF
aws iam create-role --role-name web.deploy@prod --path /brokered/ \
  --max-session-duration 7200 \
  --description 'Brokered by keyless for arn:aws:iam::111111111111:role/teams/web.deploy@prod (subject keyless:111111111111:role/web.deploy@prod)' \
  --assume-role-policy-document file://trust.json

# 3. Link the keyless role to the AWS role, in keyless (with keyless
#    administrator credentials).
aws iam tag-role --endpoint-url https://keyless.internal:8400 \
  --role-name web.deploy@prod \
  --tags '[{"Key":"keyless:upstream-role-arn","Value":"arn:aws:iam::222222222222:role/brokered/web.deploy@prod"}]'

# Then give the role what it may do in AWS, for example:
#   aws iam attach-role-policy --role-name web.deploy@prod --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess
