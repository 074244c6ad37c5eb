package doctor

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var appsDeployment = appsv1.Deployment{
	ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web"},
	Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
}
