package sts

//go:generate go run ../awsquery/shapegen -service sts -version 2011-06-15 -func inputShapes -o zz_shapes.go -ops AssumeRoleWithWebIdentity,DecodeAuthorizationMessage,GetAccessKeyInfo,GetCallerIdentity
