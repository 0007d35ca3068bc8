# keyless broker aws-setup --output terraform: what AWS account 222222222222 needs so that keyless
# brokers the keyless role arn:aws:iam::111111111111:role/teams/web.deploy@prod
# to the AWS role arn:aws:iam::222222222222:role/brokered/web.deploy@prod.
# AWS trusts keyless's issuer https://oidc.example.com/ci for exactly the subject
# keyless:111111111111:role/web.deploy@prod (audience sts.amazonaws.com).
#
# NOTE: this machine's trust store does not vouch for the certificate chain of keys.example.com:
# AWS may then rely on its thumbprint fedcba9876543210fedcba9876543210fedcba98; check it out of band.
#
# One IAM OIDC provider per AWS account serves every keyless role: keep a single
# aws_iam_openid_connect_provider for this issuer. If the account has it already:
#   terraform import aws_iam_openid_connect_provider.keyless arn:aws:iam::222222222222:oidc-provider/oidc.example.com/ci

resource "aws_iam_openid_connect_provider" "keyless" {
  url             = "https://oidc.example.com/ci"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["fedcba9876543210fedcba9876543210fedcba98", "0123456789abcdef0123456789abcdef01234567"]
}

# The AWS role keyless brokers to. Its trust policy admits only ID tokens of
# keyless's issuer for the keyless role's subject; attach what the role may
# do in AWS (aws_iam_role_policy_attachment, aws_iam_role_policy).
resource "aws_iam_role" "web_deploy_prod" {
  name                 = "web.deploy@prod"
  path                 = "/brokered/"
  description          = "Brokered by keyless for arn:aws:iam::111111111111:role/teams/web.deploy@prod (subject keyless:111111111111:role/web.deploy@prod)"
  max_session_duration = 7200

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "KeylessBroker"
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.keyless.arn }
      Action    = ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"]
      Condition = {
        StringEquals = {
          "oidc.example.com/ci:aud" = "sts.amazonaws.com"
          "oidc.example.com/ci:sub" = "keyless:111111111111:role/web.deploy@prod"
        }
      }
    }]
  })
}

# Then link the keyless role to this role, in keyless (with keyless
# administrator credentials):
#   aws iam tag-role --endpoint-url https://keyless.internal:8400 --role-name web.deploy@prod --tags '[{"Key":"keyless:upstream-role-arn","Value":"arn:aws:iam::222222222222:role/brokered/web.deploy@prod"}]'

output "keyless_oidc_provider_arn" {
  value = aws_iam_openid_connect_provider.keyless.arn
}

output "web_deploy_prod_role_arn" {
  value = aws_iam_role.web_deploy_prod.arn
}
