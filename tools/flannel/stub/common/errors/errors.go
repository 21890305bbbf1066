// Package errors stands in for the tencentcloud SDK error type.
package errors

// TencentCloudSDKError mirrors the SDK's error shape.
type TencentCloudSDKError struct{ Code, Message, RequestId string }

func (e *TencentCloudSDKError) Error() string { return e.Code + ": " + e.Message }
